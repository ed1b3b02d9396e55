#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace whale::jinja {

namespace {

// Recursion over nested values (printing, comparing, JSON) is bounded like Python's recursion
// limit, so deeply nested data raises an error instead of exhausting the stack.
class RecursionGuard {
 public:
  RecursionGuard() {
    if (++Depth() > kLimit) {
      --Depth();
      throw TemplateError("RecursionError: maximum recursion depth exceeded");
    }
  }
  ~RecursionGuard() { --Depth(); }
  RecursionGuard(const RecursionGuard&) = delete;
  RecursionGuard& operator=(const RecursionGuard&) = delete;

 private:
  static constexpr int kLimit = 500;
  static int& Depth() {
    thread_local int depth = 0;
    return depth;
  }
};

}  // namespace

void ThrowPython(std::string_view exception_type, std::string_view message) {
  throw TemplateError(Cat(exception_type, ": ", message));
}

const Value* Dict::Find(const Value& key) const {
  for (const auto& [k, v] : items) {
    if (k.Equals(key)) return &v;
  }
  return nullptr;
}

Value* Dict::Find(const Value& key) {
  for (auto& [k, v] : items) {
    if (k.Equals(key)) return &v;
  }
  return nullptr;
}

void Dict::Set(Value key, Value value) {
  if (Value* existing = Find(key)) {
    *existing = std::move(value);
  } else {
    items.emplace_back(std::move(key), std::move(value));
  }
}

Value Value::Undefined(std::string hint, std::string unsafe_error) {
  Value v;
  v.string_ = std::make_shared<const std::string>(std::move(hint));
  v.unsafe_ = std::move(unsafe_error);
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value::Value(bool b) : kind_(Kind::kBool), bool_(b) {}
Value::Value(int64_t i) : kind_(Kind::kInt), int_(i) {}
Value::Value(double d) : kind_(Kind::kFloat), float_(d) {}
Value::Value(std::string s)
    : kind_(Kind::kString), string_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::List(ValueList items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::Tuple(ValueList items) {
  Value v = List(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}

Value Value::MakeDict(Dict dict) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<Dict>(std::move(dict));
  return v;
}

Value Value::MakeNamespace(Dict attributes, std::string type_name) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.dict_ = std::make_shared<Dict>(std::move(attributes));
  v.string_ = std::make_shared<const std::string>(std::move(type_name));
  return v;
}

Value Value::MakeFunction(std::string name, NativeFunction call) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.function_ = std::make_shared<const Function>(Function{std::move(name), std::move(call)});
  return v;
}

const std::string& Value::type_name() const {
  return *string_;
}

Value Value::FromJson(const nlohmann::ordered_json& json) {
  RecursionGuard guard;
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(FromJson(item));
      return List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict dict;
      for (auto it = json.begin(); it != json.end(); ++it) {
        dict.items.emplace_back(Value(it.key()), FromJson(it.value()));
      }
      return MakeDict(std::move(dict));
    }
    default:
      return None();
  }
}

std::string Value::PythonTypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return type_name();
    case Kind::kFunction:
      return "builtin_function_or_method";
  }
  return "object";
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return bool_;
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0;
    case Kind::kString:
      return !string_->empty();
    case Kind::kList:
    case Kind::kTuple:
      return !list_->empty();
    case Kind::kDict:
      return !dict_->items.empty();
    case Kind::kNamespace:
    case Kind::kFunction:
      return true;
  }
  return false;
}

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: scientific when the exponent is < -4 or
  // >= 16.
  char buffer[64];
  auto result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string sci(buffer, result.ptr);
  size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  int exponent = std::stoi(sci.substr(e + 1));
  bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0) {
    return out + "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  }
  size_t int_digits = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= int_digits) {
    return out + digits + std::string(int_digits - digits.size(), '0') + ".0";
  }
  return out + digits.substr(0, int_digits) + "." + digits.substr(int_digits);
}

std::string PythonStringRepr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t start = pos;
    char32_t cp = utf8::Next(s, pos);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!unicode::IsPythonPrintable(cp)) {
      char buffer[16];
      if (cp < 0x100) {
        std::snprintf(buffer, sizeof(buffer), "\\x%02x", static_cast<unsigned>(cp));
      } else if (cp < 0x10000) {
        std::snprintf(buffer, sizeof(buffer), "\\u%04x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(buffer, sizeof(buffer), "\\U%08x", static_cast<unsigned>(cp));
      }
      out += buffer;
    } else {
      out.append(s.substr(start, pos - start));
    }
  }
  out += quote;
  return out;
}

std::string Value::Str() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return *string_;
    default:
      return Repr();
  }
}

std::string Value::Repr() const {
  RecursionGuard guard;
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return bool_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(int_);
    case Kind::kFloat:
      return PythonFloatRepr(float_);
    case Kind::kString:
      return PythonStringRepr(*string_);
    case Kind::kList:
    case Kind::kTuple: {
      bool tuple = kind_ == Kind::kTuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += ", ";
        out += (*list_)[i].Repr();
      }
      if (tuple && list_->size() == 1) out += ",";
      return out + (tuple ? ")" : "]");
    }
    case Kind::kDict: {
      std::string out = "{";
      for (size_t i = 0; i < dict_->items.size(); ++i) {
        if (i) out += ", ";
        out += dict_->items[i].first.Repr() + ": " + dict_->items[i].second.Repr();
      }
      return out + "}";
    }
    case Kind::kNamespace: {
      std::string out = Cat("<", type_name(), " {");
      for (size_t i = 0; i < dict_->items.size(); ++i) {
        if (i) out += ", ";
        out += dict_->items[i].first.Repr() + ": " + dict_->items[i].second.Repr();
      }
      return out + "}>";
    }
    case Kind::kFunction:
      // Python adds the object's address, which no test can compare.
      return Cat("<built-in method ", function_->name, ">");
  }
  return "";
}

bool Value::Equals(const Value& other) const {
  RecursionGuard guard;
  if (is_number() && other.is_number()) {
    if (kind_ == Kind::kFloat || other.kind_ == Kind::kFloat) return AsDouble() == other.AsDouble();
    return AsInt() == other.AsInt();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return *string_ == *other.string_;
    case Kind::kList:
    case Kind::kTuple:
      if (list_->size() != other.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].Equals((*other.list_)[i])) return false;
      }
      return true;
    case Kind::kDict:
      if (dict_->items.size() != other.dict_->items.size()) return false;
      for (const auto& [k, v] : dict_->items) {
        const Value* o = other.dict_->Find(k);
        if (!o || !v.Equals(*o)) return false;
      }
      return true;
    case Kind::kNamespace:
      return dict_ == other.dict_;
    case Kind::kFunction:
      return function_ == other.function_;
    default:
      return false;
  }
}

bool Value::Less(const Value& other) const {
  RecursionGuard guard;
  if (is_number() && other.is_number()) {
    if (kind_ == Kind::kFloat || other.kind_ == Kind::kFloat) return AsDouble() < other.AsDouble();
    return AsInt() < other.AsInt();
  }
  if (kind_ == Kind::kString && other.kind_ == Kind::kString) {
    return *string_ < *other.string_;  // UTF-8 byte order is code point order
  }
  if (kind_ == other.kind_ && is_sequence()) {
    const ValueList& a = *list_;
    const ValueList& b = *other.list_;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (!a[i].Equals(b[i])) return a[i].Less(b[i]);
    }
    return a.size() < b.size();
  }
  ThrowPython("TypeError", Cat("'<' not supported between instances of '", PythonTypeName(),
                               "' and '", other.PythonTypeName(), "'"));
}

ValueList Value::Iterate() const {
  switch (kind_) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
    case Kind::kTuple:
      return *list_;
    case Kind::kDict: {
      ValueList keys;
      for (const auto& item : dict_->items) keys.push_back(item.first);
      return keys;
    }
    case Kind::kString: {
      ValueList chars;
      size_t pos = 0;
      while (pos < string_->size()) {
        size_t start = pos;
        utf8::Next(*string_, pos);
        chars.emplace_back(string_->substr(start, pos - start));
      }
      return chars;
    }
    default:
      ThrowPython("TypeError", Cat("'", PythonTypeName(), "' object is not iterable"));
  }
}

int64_t Value::Length() const {
  switch (kind_) {
    case Kind::kString: {
      int64_t n = 0;
      for (char c : *string_) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      return n;
    }
    case Kind::kList:
    case Kind::kTuple:
      return static_cast<int64_t>(list_->size());
    case Kind::kDict:
      return static_cast<int64_t>(dict_->items.size());
    case Kind::kUndefined:
      return 0;
    default:
      ThrowPython("TypeError", Cat("object of type '", PythonTypeName(), "' has no len()"));
  }
}

namespace {

void AppendJsonString(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  size_t pos = 0;
  while (pos < s.size()) {
    size_t start = pos;
    char32_t cp = utf8::Next(s, pos);
    char buffer[16];
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20) {
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", static_cast<unsigned>(cp));
      out += buffer;
    } else if (ensure_ascii && cp > 0x7E) {
      if (cp >= 0x10000) {
        char32_t v = cp - 0x10000;
        std::snprintf(buffer, sizeof(buffer), "\\u%04x\\u%04x",
                      static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buffer, sizeof(buffer), "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buffer;
    } else {
      out.append(s.substr(start, pos - start));
    }
  }
  out += '"';
}

std::string JsonFloat(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return PythonFloatRepr(value);
}

struct JsonWriter {
  bool ensure_ascii;
  int indent;
  const std::string& item_separator;
  const std::string& key_separator;
  bool sort_keys;

  void Newline(std::string& out, int level) const {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
  }

  std::string KeyString(const Value& key) const {
    switch (key.kind()) {
      case Value::Kind::kString:
        return key.AsString();
      case Value::Kind::kNone:
        return "null";
      case Value::Kind::kBool:
        return key.AsBool() ? "true" : "false";
      case Value::Kind::kInt:
        return std::to_string(key.AsInt());
      case Value::Kind::kFloat:
        return JsonFloat(key.AsDouble());
      default:
        ThrowPython("TypeError",
                    Cat("keys must be str, int, float, bool or None, not ", key.PythonTypeName()));
    }
  }

  void Write(std::string& out, const Value& v, int level) const {
    RecursionGuard guard;
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return;
      case Value::Kind::kBool:
        out += v.AsBool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out += std::to_string(v.AsInt());
        return;
      case Value::Kind::kFloat:
        out += JsonFloat(v.AsDouble());
        return;
      case Value::Kind::kString:
        AppendJsonString(out, v.AsString(), ensure_ascii);
        return;
      case Value::Kind::kList:
      case Value::Kind::kTuple: {
        const ValueList& items = v.AsList();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_separator;
          if (indent >= 0) Newline(out, level + 1);
          Write(out, items[i], level + 1);
        }
        if (indent >= 0) Newline(out, level);
        out += ']';
        return;
      }
      case Value::Kind::kDict: {
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [key, value] : v.AsDict().items)
          entries.emplace_back(KeyString(key), &value);
        if (sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        if (entries.empty()) {
          out += "{}";
          return;
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_separator;
          if (indent >= 0) Newline(out, level + 1);
          AppendJsonString(out, entries[i].first, ensure_ascii);
          out += key_separator;
          Write(out, *entries[i].second, level + 1);
        }
        if (indent >= 0) Newline(out, level);
        out += '}';
        return;
      }
      default:
        ThrowPython("TypeError",
                    Cat("Object of type ", v.PythonTypeName(), " is not JSON serializable"));
    }
  }
};

}  // namespace

std::string Value::ToJson(bool ensure_ascii, int indent, const std::string& item_separator,
                          const std::string& key_separator, bool sort_keys) const {
  std::string out;
  JsonWriter{ensure_ascii, indent, item_separator, key_separator, sort_keys}.Write(out, *this, 0);
  return out;
}

}  // namespace whale::jinja
