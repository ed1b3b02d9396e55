#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/jinja_value.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace whale::jinja {

namespace {

// Python's str.isspace() / regex \s on the code point starting at s[pos]; returns its byte length,
// or 0 if it is not whitespace.
size_t SpaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return unicode::IsPythonSpace(c) ? 1 : 0;
  if (utf8::ValidSequenceLength(s, pos) == 0) return 0;
  size_t next = pos;
  return unicode::IsPythonSpace(utf8::Next(s, next)) ? next - pos : 0;
}

size_t SkipSpaces(std::string_view s, size_t pos) {
  while (size_t n = SpaceAt(s, pos)) pos += n;
  return pos;
}

// Python str.rstrip() with no argument.
std::string_view RStrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (SpaceAt(s, start) != end - start) break;
    end = start;
  }
  return s.substr(0, end);
}

bool AllSpaces(std::string_view s) {
  if (s.empty()) return false;  // Jinja tests with \s+ (at least one)
  size_t pos = 0;
  while (pos < s.size()) {
    size_t n = SpaceAt(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(Normalize(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      size_t tag = FindTagStart(pos_);
      if (tag == std::string::npos) {
        EmitData(src_.substr(pos_), src_.size());
        pos_ = src_.size();
        line_starting_ = !src_.empty() && src_.back() == '\n';
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')
                      ? src_[tag + 2]
                      : '\0';
      std::string_view text = std::string_view(src_).substr(pos_, tag - pos_);
      text = StripBefore(text, sign, kind != '{');
      EmitData(text, tag);
      size_t body = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        LexComment(tag, body);
      } else if (kind == '%' && IsRaw(body)) {
        LexRaw(tag, body);
      } else {
        LexTag(tag, body, kind == '%');
      }
    }
    auto [line, column] = Position(src_.size());
    tokens_.push_back({Token::Type::kEnd, "", line, column});
    return std::move(tokens_);
  }

 private:
  static std::string Normalize(std::string_view source) {
    std::string out;
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        out += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        out += source[i];
      }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  [[noreturn]] void Error(size_t at, std::string_view message) const {
    auto [line, column] = Position(at);
    throw TemplateError(
        Cat("template syntax error at line ", line, ", column ", column, ": ", message));
  }

  std::pair<int, int> Position(size_t at) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(at - line_starts_[line - 1]) + 1};
  }

  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  // Whitespace control for the text before a tag: `-` strips all trailing whitespace; otherwise
  // lstrip_blocks removes the indentation of a block or comment tag that starts its line.
  std::string_view StripBefore(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return RStrip(text);
    if (sign == '+' || !lstrip_applies) return text;
    size_t line_start = text.rfind('\n');
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    if ((line_start > 0 || line_starting_) && AllSpaces(text.substr(line_start))) {
      return text.substr(0, line_start);
    }
    return text;
  }

  void EmitData(std::string_view text, size_t at) {
    if (!text.empty()) {
      auto [line, column] = Position(at - text.size());
      tokens_.push_back({Token::Type::kData, std::string(text), line, column});
    }
  }

  bool IsRaw(size_t body) const {
    size_t p = SkipSpaces(src_, body);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p = SkipSpaces(src_, p + 3);
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  // After `%}`: trim_blocks drops one newline; `-%}` drops all whitespace; `+%}` keeps it.
  size_t AfterBlockEnd(size_t end_sign_or_percent, char sign) {
    size_t after = end_sign_or_percent + (sign ? 3 : 2);
    if (sign == '-') return SkipSpaces(src_, after);
    if (sign == '\0' && after < src_.size() && src_[after] == '\n') return after + 1;
    return after;
  }

  void LexComment(size_t tag, size_t body) {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) Error(tag, "missing end of comment tag");
    char sign = end > body && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    pos_ = AfterBlockEnd(sign ? end - 1 : end, sign);
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void LexRaw(size_t tag, size_t body) {
    size_t p = SkipSpaces(src_, body) + 3;
    p = SkipSpaces(src_, p);
    size_t content = src_.compare(p, 3, "-%}") == 0 ? SkipSpaces(src_, p + 3) : p + 2;
    // Find {% endraw %} (with optional whitespace control).
    size_t search = content;
    while (true) {
      size_t open = src_.find("{%", search);
      if (open == std::string::npos) Error(tag, "missing end of raw directive");
      size_t q = open + 2;
      char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
      if (sign) ++q;
      q = SkipSpaces(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      q = SkipSpaces(src_, q + 6);
      char end_sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
      if (src_.compare(q + (end_sign ? 1 : 0), 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string_view text = std::string_view(src_).substr(content, open - content);
      text = StripBefore(text, sign, true);
      EmitData(text, open);
      pos_ = AfterBlockEnd(q, end_sign);
      line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
      return;
    }
  }

  void LexTag(size_t tag, size_t body, bool block) {
    auto [line, column] = Position(tag);
    tokens_.push_back(
        {block ? Token::Type::kBlockBegin : Token::Type::kVariableBegin, "", line, column});
    std::vector<char> brackets;
    size_t p = body;
    while (true) {
      if (p >= src_.size())
        Error(tag, block ? "unexpected end of template, expected '%}'"
                         : "unexpected end of template, expected '}}'");
      if (brackets.empty()) {
        // End of the tag (only outside brackets).
        if (block) {
          char sign = src_[p] == '-' || src_[p] == '+' ? src_[p] : '\0';
          if (src_.compare(p + (sign ? 1 : 0), 2, "%}") == 0) {
            auto [l, c] = Position(p);
            tokens_.push_back({Token::Type::kBlockEnd, "", l, c});
            pos_ = AfterBlockEnd(p, sign);
            line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
            return;
          }
        } else {
          bool minus = src_[p] == '-' && src_.compare(p + 1, 2, "}}") == 0;
          if (minus || src_.compare(p, 2, "}}") == 0) {
            auto [l, c] = Position(p);
            tokens_.push_back({Token::Type::kVariableEnd, "", l, c});
            pos_ = minus ? SkipSpaces(src_, p + 3) : p + 2;
            line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
            return;
          }
        }
      }
      if (size_t n = SpaceAt(src_, p)) {
        p += n;
        continue;
      }
      p = LexExpressionToken(p, brackets);
    }
  }

  size_t LexExpressionToken(size_t p, std::vector<char>& brackets) {
    std::pair<int, int> position = Position(p);
    auto push = [&](Token::Type type, std::string value) {
      tokens_.push_back({type, std::move(value), position.first, position.second});
    };
    char c = src_[p];
    if (std::isdigit(static_cast<unsigned char>(c))) return LexNumber(p, push);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) {
        ++q;
      }
      push(Token::Type::kName, src_.substr(p, q - p));
      return q;
    }
    if (c == '\'' || c == '"') return LexString(p, push);
    static const char* kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwoChar) {
      if (src_.compare(p, 2, op) == 0) {
        push(Token::Type::kOperator, op);
        return p + 2;
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) != std::string_view::npos) {
      if (c == '(' || c == '[' || c == '{') {
        brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (brackets.empty()) Error(p, Cat("unexpected '", c, "'"));
        if (brackets.back() != c)
          Error(p, Cat("unexpected '", c, "', expected '", brackets.back(), "'"));
        brackets.pop_back();
      }
      push(Token::Type::kOperator, std::string(1, c));
      return p + 1;
    }
    size_t len = utf8::ValidSequenceLength(src_, p);
    Error(p, Cat("unexpected char '", src_.substr(p, len ? len : 1), "'"));
  }

  template <typename Push>
  size_t LexNumber(size_t p, Push& push) {
    auto digits = [&](size_t q) {
      size_t start = q;
      while (q < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                                 (src_[q] == '_' && q > start && q + 1 < src_.size() &&
                                  std::isdigit(static_cast<unsigned char>(src_[q + 1]))))) {
        ++q;
      }
      return q;
    };
    size_t q = digits(p);
    bool is_float = false;
    // A float needs digits after the dot; `1.x` stays integer + attribute.
    bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && q + 1 < src_.size() && src_[q] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
      q = digits(q + 1);
      is_float = true;
    }
    if (!after_dot && q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t e = q + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        q = digits(e);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = p; i < q; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    push(is_float ? Token::Type::kFloat : Token::Type::kInteger, text);
    return q;
  }

  template <typename Push>
  size_t LexString(size_t p, Push& push) {
    char quote = src_[p];
    std::string value;
    size_t q = p + 1;
    while (true) {
      if (q >= src_.size()) Error(p, "unterminated string");
      char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) Error(p, "unterminated string");
      q = DecodeEscape(q, value);
    }
    push(Token::Type::kString, value);
    return q + 1;
  }

  // Python's unicode-escape decoding of one backslash sequence at src_[q]; returns the next index.
  size_t DecodeEscape(size_t q, std::string& value) {
    char e = src_[q + 1];
    auto hex = [&](size_t start, size_t count) -> char32_t {
      char32_t cp = 0;
      for (size_t i = 0; i < count; ++i) {
        if (start + i >= src_.size() ||
            !std::isxdigit(static_cast<unsigned char>(src_[start + i]))) {
          Error(q, Cat("truncated \\", e, " escape in string"));
        }
        char h = src_[start + i];
        cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                 ? h - '0'
                                                 : (std::tolower(h) - 'a' + 10));
      }
      return cp;
    };
    auto append = [&](char32_t cp) {
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        Error(q, "escape is not a valid character");
      utf8::Append(value, cp);
    };
    switch (e) {
      case '\n':
        return q + 2;  // line continuation
      case '\\':
        value += '\\';
        return q + 2;
      case '\'':
        value += '\'';
        return q + 2;
      case '"':
        value += '"';
        return q + 2;
      case 'a':
        value += '\a';
        return q + 2;
      case 'b':
        value += '\b';
        return q + 2;
      case 'f':
        value += '\f';
        return q + 2;
      case 'n':
        value += '\n';
        return q + 2;
      case 'r':
        value += '\r';
        return q + 2;
      case 't':
        value += '\t';
        return q + 2;
      case 'v':
        value += '\v';
        return q + 2;
      case 'x':
        append(hex(q + 2, 2));
        return q + 4;
      case 'u':
        append(hex(q + 2, 4));
        return q + 6;
      case 'U':
        append(hex(q + 2, 8));
        return q + 10;
      case 'N':
        Error(q, "\\N{...} escapes are not supported");
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      char32_t cp = 0;
      size_t i = q + 1;
      while (i < q + 4 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7') {
        cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
        ++i;
      }
      append(cp);
      return i;
    }
    value += '\\';  // unknown escapes keep their backslash
    return q + 1;
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source) {
  if (utf8::FindInvalid(source) != utf8::kValid) {
    throw TemplateError("template is not valid UTF-8");
  }
  return Lexer(source).Run();
}

}  // namespace whale::jinja
