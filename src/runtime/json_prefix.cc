#include "runtime/json_prefix.h"

namespace whale {
namespace {

constexpr std::string_view kLiterals[3] = {"true", "false", "null"};

bool IsSpace(uint8_t b) {
  return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

bool IsDigit(uint8_t b) {
  return b >= '0' && b <= '9';
}

int HexDigit(uint8_t b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

}  // namespace

bool JsonPrefix::Push(uint8_t byte) {
  JsonPrefix next = *this;
  if (!next.StepLimited(byte)) return false;
  *this = next;
  return true;
}

bool JsonPrefix::PushAll(std::string_view bytes) {
  JsonPrefix next = *this;
  for (char c : bytes)
    if (!next.StepLimited(static_cast<uint8_t>(c))) return false;
  *this = next;
  return true;
}

bool JsonPrefix::StepLimited(uint8_t b) {
  const bool in_string = mode_ == Mode::kString || mode_ == Mode::kEscape ||
                         mode_ == Mode::kUnicode || mode_ == Mode::kLowBackslash ||
                         mode_ == Mode::kLowU || mode_ == Mode::kUtf8;
  if (!in_string && IsSpace(b)) {
    if (max_space_run_ > 0 && space_run_ >= max_space_run_) return false;
    if (!Step(b)) return false;
    ++space_run_;
    return true;
  }
  space_run_ = 0;
  return Step(b);
}

void JsonPrefix::EndValue() {
  mode_ = Mode::kAfterValue;
}

bool JsonPrefix::StartValue(uint8_t b) {
  if (depth_ == 0 && started_) return false;
  if (object_only_ && depth_ == 0 && b != '{') return false;
  switch (b) {
    case '{':
    case '[':
      if (depth_ >= kMaxDepth) return false;
      stack_[depth_++] = static_cast<char>(b);
      mode_ = b == '{' ? Mode::kKeyOrClose : Mode::kValueOrClose;
      break;
    case '"':
      string_is_key_ = false;
      mode_ = Mode::kString;
      break;
    case '-':
      mode_ = Mode::kNumberSign;
      break;
    case '0':
      mode_ = Mode::kNumberZero;
      break;
    case 't':
    case 'f':
    case 'n':
      literal_ = b == 't' ? 0 : b == 'f' ? 1 : 2;
      literal_pos_ = 1;
      mode_ = Mode::kLiteral;
      break;
    default:
      if (b < '1' || b > '9') return false;
      mode_ = Mode::kNumberInt;
      number_digits_ = 1;
  }
  started_ = true;
  return true;
}

bool JsonPrefix::CloseContainer(uint8_t b) {
  if (depth_ == 0 || stack_[depth_ - 1] != (b == '}' ? '{' : '[')) return false;
  --depth_;
  EndValue();
  return true;
}

bool JsonPrefix::EndNumber(uint8_t b) {
  EndValue();
  return Step(b);
}

bool JsonPrefix::Step(uint8_t b) {
  switch (mode_) {
    case Mode::kValue:
      return IsSpace(b) || StartValue(b);
    case Mode::kValueOrClose:
      if (IsSpace(b)) return true;
      return b == ']' ? CloseContainer(b) : StartValue(b);
    case Mode::kKeyOrClose:
      if (IsSpace(b)) return true;
      if (b == '}') return CloseContainer(b);
      [[fallthrough]];
    case Mode::kKey:
      if (IsSpace(b)) return true;
      if (b != '"') return false;
      string_is_key_ = true;
      mode_ = Mode::kString;
      return true;
    case Mode::kColon:
      if (IsSpace(b)) return true;
      if (b != ':') return false;
      mode_ = Mode::kValue;
      return true;
    case Mode::kAfterValue:
      if (IsSpace(b)) return true;
      if (depth_ == 0) return false;
      if (b == ',') {
        mode_ = stack_[depth_ - 1] == '{' ? Mode::kKey : Mode::kValue;
        return true;
      }
      return (b == '}' || b == ']') && CloseContainer(b);
    case Mode::kString:
      if (b == '"') {
        if (string_is_key_)
          mode_ = Mode::kColon;
        else
          EndValue();
        return true;
      }
      if (b == '\\') {
        mode_ = Mode::kEscape;
        return true;
      }
      if (b < 0x20) return false;  // control characters must be escaped
      if (b < 0x80) return true;
      // The lead byte of a multi-byte character fixes how many follow and the range of the first
      // (Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        utf8_left_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        utf8_left_ = 2;
        if (b == 0xE0) utf8_lo_ = 0xA0;
        if (b == 0xED) utf8_hi_ = 0x9F;
      } else if (b >= 0xF0 && b <= 0xF4) {
        utf8_left_ = 3;
        if (b == 0xF0) utf8_lo_ = 0x90;
        if (b == 0xF4) utf8_hi_ = 0x8F;
      } else {
        return false;
      }
      mode_ = Mode::kUtf8;
      return true;
    case Mode::kUtf8:
      if (b < utf8_lo_ || b > utf8_hi_) return false;
      utf8_lo_ = 0x80;
      utf8_hi_ = 0xBF;
      if (--utf8_left_ == 0) mode_ = Mode::kString;
      return true;
    case Mode::kEscape:
      switch (b) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          mode_ = Mode::kString;
          return true;
        case 'u':
          mode_ = Mode::kUnicode;
          hex_left_ = 4;
          hex_value_ = 0;
          low_surrogate_ = false;
          return true;
        default:
          return false;
      }
    case Mode::kLowBackslash:
      if (b != '\\') return false;
      mode_ = Mode::kLowU;
      return true;
    case Mode::kLowU:
      if (b != 'u') return false;
      mode_ = Mode::kUnicode;
      hex_left_ = 4;
      hex_value_ = 0;
      low_surrogate_ = true;
      return true;
    case Mode::kUnicode: {
      const int d = HexDigit(b);
      if (d < 0) return false;
      const int index = 4 - hex_left_;  // 0 for the first digit
      // After a high surrogate the escape must be DC00..DFFF; elsewhere it must not be.
      if (low_surrogate_) {
        if (index == 0 && d != 0xD) return false;
        if (index == 1 && d < 0xC) return false;
      } else if (index == 1 && hex_value_ == 0xD && d >= 0xC) {
        return false;
      }
      hex_value_ = static_cast<uint16_t>(hex_value_ * 16 + d);
      if (--hex_left_ == 0) {
        const bool high = !low_surrogate_ && hex_value_ >= 0xD800 && hex_value_ <= 0xDBFF;
        mode_ = high ? Mode::kLowBackslash : Mode::kString;
      }
      return true;
    }
    case Mode::kNumberSign:
      if (b == '0') {
        mode_ = Mode::kNumberZero;
        return true;
      }
      if (b < '1' || b > '9') return false;
      mode_ = Mode::kNumberInt;
      number_digits_ = 1;
      return true;
    case Mode::kNumberInt:
      if (IsDigit(b)) return ++number_digits_ <= kMaxIntegerDigits;
      [[fallthrough]];
    case Mode::kNumberZero:
      if (b == '.') {
        mode_ = Mode::kNumberDot;
        return true;
      }
      if (b == 'e' || b == 'E') {
        mode_ = Mode::kNumberExp;
        number_digits_ = 0;
        return true;
      }
      return EndNumber(b);
    case Mode::kNumberDot:
      if (!IsDigit(b)) return false;
      mode_ = Mode::kNumberFrac;
      return true;
    case Mode::kNumberFrac:
      if (IsDigit(b)) return true;
      if (b == 'e' || b == 'E') {
        mode_ = Mode::kNumberExp;
        number_digits_ = 0;
        return true;
      }
      return EndNumber(b);
    case Mode::kNumberExp:
      if (b == '+' || b == '-') {
        mode_ = Mode::kNumberExpSign;
        return true;
      }
      [[fallthrough]];
    case Mode::kNumberExpSign:
      if (!IsDigit(b)) return false;
      mode_ = Mode::kNumberExpInt;
      number_digits_ = 1;
      return true;
    case Mode::kNumberExpInt:
      if (IsDigit(b)) return ++number_digits_ <= kMaxExponentDigits;
      return EndNumber(b);
    case Mode::kLiteral: {
      const std::string_view word = kLiterals[literal_];
      if (b != static_cast<uint8_t>(word[literal_pos_])) return false;
      if (++literal_pos_ == word.size()) EndValue();
      return true;
    }
  }
  return false;
}

template <typename Emit>
void JsonPrefix::WriteClosing(Emit&& emit) const {
  auto end_string = [&] {
    emit("\"");
    if (string_is_key_) emit(":0");
  };
  switch (mode_) {
    case Mode::kValue:
      if (depth_ == 0 && !started_) {
        emit(object_only_ ? "{}" : "0");
        return;
      }
      emit("0");
      break;
    case Mode::kValueOrClose:
    case Mode::kKeyOrClose:
    case Mode::kAfterValue:
    case Mode::kNumberZero:
    case Mode::kNumberInt:
    case Mode::kNumberFrac:
    case Mode::kNumberExpInt:
      break;
    case Mode::kKey:
      emit("\"\":0");
      break;
    case Mode::kColon:
      emit(":0");
      break;
    case Mode::kString:
      end_string();
      break;
    case Mode::kEscape:
      emit("n");
      end_string();
      break;
    case Mode::kUnicode: {
      const int index = 4 - hex_left_;
      if (low_surrogate_ && index < 2) {
        emit(std::string_view("dc00").substr(index));
      } else {
        emit(std::string_view("0000").substr(4 - hex_left_));
        const uint32_t value = static_cast<uint32_t>(hex_value_) << (4 * hex_left_);
        if (!low_surrogate_ && value >= 0xD800 && value <= 0xDBFF) emit("\\udc00");
      }
      end_string();
      break;
    }
    case Mode::kLowBackslash:
      emit("\\udc00");
      end_string();
      break;
    case Mode::kLowU:
      emit("udc00");
      end_string();
      break;
    case Mode::kUtf8: {
      const char first = static_cast<char>(utf8_lo_);
      emit(std::string_view(&first, 1));
      for (int i = 1; i < utf8_left_; ++i) emit("\x80");
      end_string();
      break;
    }
    case Mode::kNumberSign:
    case Mode::kNumberDot:
    case Mode::kNumberExp:
    case Mode::kNumberExpSign:
      emit("0");
      break;
    case Mode::kLiteral:
      emit(kLiterals[literal_].substr(literal_pos_));
      break;
  }
  for (int i = depth_ - 1; i >= 0; --i) emit(stack_[i] == '{' ? "}" : "]");
}

std::string JsonPrefix::Closing() const {
  std::string out;
  WriteClosing([&](std::string_view s) { out += s; });
  return out;
}

size_t JsonPrefix::ClosingLength() const {
  size_t n = 0;
  WriteClosing([&](std::string_view s) { n += s.size(); });
  return n;
}

bool JsonPrefix::complete() const {
  return started_ && ClosingLength() == 0;
}

}  // namespace whale
