// Attribute and item lookup, slicing, and the Python str/list/dict methods templates call.
#include <algorithm>
#include <cstdio>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace whale::jinja {

namespace {

std::u32string Chars(std::string_view s) {
  return utf8::ToUtf32(s);
}
std::string Utf8(std::u32string_view s) {
  return utf8::FromUtf32(s);
}

const std::string& RequireString(const Value& v, std::string_view function, std::string_view what) {
  if (!v.is_string()) {
    ThrowPython("TypeError",
                Cat(function, "() argument ", what, " must be str, not ", v.PythonTypeName()));
  }
  return v.AsString();
}

bool IsSpaceChar(char32_t cp) {
  return unicode::IsPythonSpace(cp);
}

// str.split(sep=None, maxsplit=-1) and rsplit.
ValueList Split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  ValueList parts;
  if (sep.is_none()) {
    std::u32string chars = Chars(s);
    std::vector<std::u32string> words;
    if (!from_right) {
      size_t i = 0;
      while (i < chars.size()) {
        while (i < chars.size() && IsSpaceChar(chars[i])) ++i;
        if (i >= chars.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t end = chars.size();
          while (end > i && IsSpaceChar(chars[end - 1])) --end;
          words.push_back(chars.substr(i, end - i));
          break;
        }
        size_t j = i;
        while (j < chars.size() && !IsSpaceChar(chars[j])) ++j;
        words.push_back(chars.substr(i, j - i));
        i = j;
      }
    } else {
      size_t i = chars.size();
      while (i > 0) {
        while (i > 0 && IsSpaceChar(chars[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t begin = 0;
          while (begin < i && IsSpaceChar(chars[begin])) ++begin;
          words.push_back(chars.substr(begin, i - begin));
          break;
        }
        size_t j = i;
        while (j > 0 && !IsSpaceChar(chars[j - 1])) --j;
        words.push_back(chars.substr(j, i - j));
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (auto& w : words) parts.emplace_back(Utf8(w));
    return parts;
  }
  const std::string& separator = RequireString(sep, "split", "sep");
  if (separator.empty()) ThrowPython("ValueError", "empty separator");
  std::vector<std::string> pieces;
  if (!from_right) {
    size_t start = 0;
    while (true) {
      size_t found = s.find(separator, start);
      if (found == std::string::npos ||
          (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) == maxsplit)) {
        pieces.push_back(s.substr(start));
        break;
      }
      pieces.push_back(s.substr(start, found - start));
      start = found + separator.size();
    }
  } else {
    size_t end = s.size();
    while (true) {
      size_t found =
          end >= separator.size() ? s.rfind(separator, end - separator.size()) : std::string::npos;
      if (found == std::string::npos ||
          (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) == maxsplit)) {
        pieces.push_back(s.substr(0, end));
        break;
      }
      pieces.push_back(s.substr(found + separator.size(), end - found - separator.size()));
      end = found;
    }
    std::reverse(pieces.begin(), pieces.end());
  }
  for (auto& p : pieces) parts.emplace_back(std::move(p));
  return parts;
}

// str.splitlines(): Python's line boundaries.
ValueList SplitLines(const std::string& s, bool keepends) {
  std::u32string chars = Chars(s);
  ValueList lines;
  size_t start = 0, i = 0;
  while (i < chars.size()) {
    char32_t c = chars[i];
    bool boundary = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
                    c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!boundary) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (c == '\r' && end < chars.size() && chars[end] == '\n') ++end;
    lines.emplace_back(Utf8(chars.substr(start, (keepends ? end : i) - start)));
    start = i = end;
  }
  if (start < chars.size()) lines.emplace_back(Utf8(chars.substr(start)));
  return lines;
}

std::string Replace(const std::string& s, const std::string& old, const std::string& replacement,
                    int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every character and at the end.
    std::u32string chars = Chars(s);
    int64_t done = 0;
    for (char32_t c : chars) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      utf8::Append(out, c);
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t found = s.find(old, start);
    if (found == std::string::npos) break;
    out.append(s, start, found - start);
    out += replacement;
    start = found + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

int64_t CodePointIndex(const std::string& s, size_t byte_offset) {
  return Value(s.substr(0, byte_offset)).Length();
}

bool MatchesAffix(const std::string& s, const Value& affix, bool prefix, std::string_view method) {
  auto test = [&](const Value& v) {
    const std::string& a = RequireString(v, method, "1");
    return prefix ? s.starts_with(a) : s.ends_with(a);
  };
  if (affix.kind() == Value::Kind::kTuple) {
    for (const Value& v : affix.AsList()) {
      if (test(v)) return true;
    }
    return false;
  }
  if (!affix.is_string()) {
    ThrowPython("TypeError", Cat(method, " first arg must be str or a tuple of str, not ",
                                 affix.PythonTypeName()));
  }
  return test(affix);
}

// Whether every character of a non-empty string is in a Unicode class.
bool AllChars(const std::string& s, const char* klass) {
  if (s.empty()) return false;
  Regex regex(Cat("^", klass, "+$"), "str method");
  std::vector<std::pair<size_t, size_t>> matches;
  regex.FindAll(s, matches);
  return !matches.empty();
}

// str.format with {} / {0} / {name} fields (no format specs or conversions).
std::string Format(const std::string& fmt, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 >= fmt.size() || fmt[i + 1] != '}') {
        ThrowPython("ValueError", "Single '}' encountered in format string");
      }
      ++i;
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos)
      ThrowPython("ValueError", "Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) {
      ThrowPython("ValueError", "format specs and conversions are not supported in chat templates");
    }
    const Value* value = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size())
        ThrowPython("IndexError", "Replacement index out of range");
      value = &args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return d >= '0' && d <= '9'; })) {
      size_t index = std::stoul(field);
      if (index >= args.positional.size())
        ThrowPython("IndexError", "Replacement index out of range");
      value = &args.positional[index];
    } else {
      for (const auto& [k, v] : args.keyword) {
        if (k == field) value = &v;
      }
      if (!value) ThrowPython("KeyError", PythonStringRepr(field));
    }
    out += value->Str();
    i = close;
  }
  return out;
}

Value StringMethod(const std::string& s, const std::string& name, CallArgs& args) {
  auto bind = [&](const std::vector<Param>& params) { return BindArgs(args, name, params); };
  if (name == "upper") return (bind({}), Value(unicode::PythonUpper(s)));
  if (name == "lower") return (bind({}), Value(unicode::PythonLower(s)));
  if (name == "title") return (bind({}), Value(unicode::PythonTitle(s)));
  if (name == "capitalize") return (bind({}), Value(unicode::PythonCapitalize(s)));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto a = bind({{"chars", Value::None()}});
    return Value(PythonStrip(s, a[0], name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    auto a = bind({{"sep", Value::None()}, {"maxsplit", Value(int64_t{-1})}});
    return Value::List(Split(s, a[0], a[1].AsInt(), name == "rsplit"));
  }
  if (name == "splitlines") {
    auto a = bind({{"keepends", Value(false)}});
    return Value::List(SplitLines(s, a[0].Truthy()));
  }
  if (name == "startswith" || name == "endswith") {
    auto a = bind({{"prefix", std::nullopt}});
    return Value(MatchesAffix(s, a[0], name == "startswith", name));
  }
  if (name == "replace") {
    auto a = bind({{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value(int64_t{-1})}});
    return Value(
        Replace(s, RequireString(a[0], name, "1"), RequireString(a[1], name, "2"), a[2].AsInt()));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    auto a = bind({{"sub", std::nullopt}});
    const std::string& sub = RequireString(a[0], name, "1");
    size_t found = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
    if (found == std::string::npos) {
      if (name.ends_with("index")) ThrowPython("ValueError", "substring not found");
      return Value(int64_t{-1});
    }
    return Value(CodePointIndex(s, found));
  }
  if (name == "count") {
    auto a = bind({{"sub", std::nullopt}});
    const std::string& sub = RequireString(a[0], name, "1");
    if (sub.empty()) return Value(Value(s).Length() + 1);
    int64_t n = 0;
    for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
    return Value(n);
  }
  if (name == "join") {
    auto a = bind({{"iterable", std::nullopt}});
    std::string out;
    ValueList items = IterateValue(a[0]);
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        ThrowPython("TypeError", Cat("sequence item ", i, ": expected str instance, ",
                                     items[i].PythonTypeName(), " found"));
      }
      if (i) out += s;
      out += items[i].AsString();
    }
    return Value(out);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto a = bind({{"affix", std::nullopt}});
    const std::string& affix = RequireString(a[0], name, "1");
    if (name == "removeprefix" && s.starts_with(affix)) return Value(s.substr(affix.size()));
    if (name == "removesuffix" && s.ends_with(affix) && !affix.empty()) {
      return Value(s.substr(0, s.size() - affix.size()));
    }
    return Value(s);
  }
  if (name == "format") return Value(Format(s, args));
  if (name == "isdigit") return (bind({}), Value(AllChars(s, "\\p{Nd}")));
  if (name == "isalpha") return (bind({}), Value(AllChars(s, "\\p{L}")));
  if (name == "isalnum") return (bind({}), Value(AllChars(s, "[\\p{L}\\p{N}]")));
  if (name == "isspace") {
    bind({});
    if (s.empty()) return Value(false);
    for (char32_t c : Chars(s)) {
      if (!unicode::IsPythonSpace(c)) return Value(false);
    }
    return Value(true);
  }
  if (name == "isupper" || name == "islower") {
    // At least one cased character, and every cased character upper (resp. lower) case.
    bind({});
    bool cased = false;
    for (char32_t c : Chars(s)) {
      if (!unicode::IsPythonCased(c)) continue;
      std::string one = utf8::Encode(c);
      bool lower = unicode::PythonLower(one) == one;
      bool upper = unicode::PythonUpper(one) == one && !lower;
      if (name == "isupper" ? !upper : !lower) return Value(false);
      cased = true;
    }
    return Value(cased);
  }
  ThrowPython("AttributeError", Cat("'str' object has no attribute '", name, "'"));
}

const char* const kStringMethods[] = {
    "upper",  "lower",   "title",      "capitalize", "strip",    "lstrip",       "rstrip",
    "split",  "rsplit",  "splitlines", "startswith", "endswith", "replace",      "find",
    "rfind",  "index",   "rindex",     "count",      "join",     "removeprefix", "removesuffix",
    "format", "isdigit", "isalpha",    "isalnum",    "isspace",  "isupper",      "islower"};
// Methods Python objects have that the immutable sandbox refuses to call.
const char* const kUnsafeListMethods[] = {"append", "extend",  "insert", "pop",
                                          "remove", "reverse", "sort",   "clear"};
const char* const kUnsafeDictMethods[] = {"update", "pop", "popitem", "setdefault", "clear"};

template <size_t N>
bool In(const char* const (&list)[N], const std::string& name) {
  return std::any_of(std::begin(list), std::end(list), [&](const char* m) { return name == m; });
}

Value Method(const Value& self, const std::string& name) {
  return Value::MakeFunction(
      Cat(name, " of ", self.PythonTypeName(), " object"), [self, name](CallArgs& args) -> Value {
        if (self.is_string()) return StringMethod(self.AsString(), name, args);
        if (self.is_dict()) {
          const Dict& dict = self.AsDict();
          if (name == "items" || name == "keys" || name == "values") {
            BindArgs(args, name, {});
            ValueList out;
            for (const auto& [k, v] : dict.items) {
              out.push_back(name == "items" ? Value::Tuple({k, v}) : name == "keys" ? k : v);
            }
            return Value::List(std::move(out));
          }
          if (name == "get") {
            auto a = BindArgs(args, name, {{"key", std::nullopt}, {"default", Value::None()}});
            const Value* found = dict.Find(a[0]);
            return found ? *found : a[1];
          }
          if (name == "copy") return (BindArgs(args, name, {}), self);
        }
        if (self.is_sequence()) {
          const ValueList& list = self.AsList();
          if (name == "index") {
            auto a = BindArgs(args, name, {{"value", std::nullopt}});
            for (size_t i = 0; i < list.size(); ++i) {
              if (list[i].Equals(a[0])) return Value(static_cast<int64_t>(i));
            }
            ThrowPython("ValueError", Cat(a[0].Repr(), " is not in list"));
          }
          if (name == "count") {
            auto a = BindArgs(args, name, {{"value", std::nullopt}});
            int64_t n = 0;
            for (const Value& v : list) n += v.Equals(a[0]);
            return Value(n);
          }
          if (name == "copy") return (BindArgs(args, name, {}), Value::List(list));
        }
        ThrowPython("AttributeError",
                    Cat("'", self.PythonTypeName(), "' object has no attribute '", name, "'"));
      });
}

Value Unsafe(const Value& object, const std::string& name) {
  return Value::Undefined(
      Cat("'", object.PythonTypeName(), "' object has no attribute '", name, "'"),
      Cat("SecurityError: access to attribute '", name, "' of '", object.PythonTypeName(),
          "' object is unsafe."));
}

Value Missing(const Value& object, const Value& name) {
  if (name.is_string()) {
    return Value::Undefined(
        Cat("'", object.PythonTypeName(), " object' has no attribute '", name.AsString(), "'"));
  }
  return Value::Undefined(
      Cat("'", object.PythonTypeName(), " object' has no element ", name.Repr()));
}

// Python attribute lookup on our values: the value of a real attribute, nullopt if there is none.
std::optional<Value> PythonAttribute(const Value& object, const std::string& name) {
  // Dunder attributes exist on every Python object and the sandbox refuses them; other names with
  // a leading underscore are not attributes, so lookup falls through to items.
  if (name.starts_with("__")) return Unsafe(object, name);
  switch (object.kind()) {
    case Value::Kind::kString:
      if (In(kStringMethods, name)) return Method(object, name);
      break;
    case Value::Kind::kDict:
      if (name == "items" || name == "keys" || name == "values" || name == "get" ||
          name == "copy") {
        return Method(object, name);
      }
      if (In(kUnsafeDictMethods, name)) return Unsafe(object, name);
      break;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      if (name == "index" || name == "count" ||
          (name == "copy" && object.kind() == Value::Kind::kList)) {
        return Method(object, name);
      }
      if (object.kind() == Value::Kind::kList && In(kUnsafeListMethods, name))
        return Unsafe(object, name);
      break;
    case Value::Kind::kNamespace:
      if (const Value* v = object.AsDict().Find(Value(name))) return *v;
      break;
    default:
      break;
  }
  return std::nullopt;
}

// Python item lookup: nullopt where Python raises TypeError or LookupError.
std::optional<Value> PythonItem(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kDict:
      if (const Value* v = object.AsDict().Find(key)) return *v;
      return std::nullopt;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
    case Value::Kind::kString: {
      if (!key.is_integer()) return std::nullopt;
      int64_t n = object.Length();
      int64_t i = key.AsInt();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return std::nullopt;
      if (object.is_string()) return object.Iterate()[static_cast<size_t>(i)];
      return object.AsList()[static_cast<size_t>(i)];
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string PythonStrip(std::string_view s, const Value& chars, bool left, bool right) {
  std::u32string text = Chars(s);
  std::u32string set;
  bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) set = Chars(RequireString(chars, "strip", "1"));
  auto strip = [&](char32_t c) {
    return whitespace ? unicode::IsPythonSpace(c) : set.find(c) != std::u32string::npos;
  };
  size_t begin = 0, end = text.size();
  if (left) {
    while (begin < end && strip(text[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip(text[end - 1])) --end;
  }
  return Utf8(std::u32string_view(text).substr(begin, end - begin));
}

ValueList IterateValue(const Value& value) {
  return value.Iterate();
}

Value GetAttribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) {
    ThrowPython("UndefinedError", object.undefined_hint().empty()
                                      ? Cat("'", name, "' of an undefined value")
                                      : object.undefined_hint());
  }
  if (auto attribute = PythonAttribute(object, name)) return *attribute;
  if (auto item = PythonItem(object, Value(name))) return *item;
  return Missing(object, Value(name));
}

Value GetItem(const Value& object, const Value& key) {
  if (object.is_undefined()) {
    ThrowPython("UndefinedError", object.undefined_hint().empty() ? "indexing an undefined value"
                                                                  : object.undefined_hint());
  }
  if (auto item = PythonItem(object, key)) return *item;
  if (key.is_string()) {
    if (auto attribute = PythonAttribute(object, key.AsString())) return *attribute;
  }
  return Missing(object, key);
}

Value Slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) ThrowPython("UndefinedError", object.undefined_hint());
  if (!object.is_string() && !object.is_sequence()) return Missing(object, Value("slice"));
  ValueList items = object.is_string() ? object.Iterate() : object.AsList();
  auto n = static_cast<int64_t>(items.size());
  auto bound = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_integer()) {
      ThrowPython("TypeError", Cat("slice ", what, " must be integers or None"));
    }
    return v.AsInt();
  };
  int64_t s = bound(step, "indices").value_or(1);
  if (s == 0) ThrowPython("ValueError", "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v < 0 ? *v + n : *v;
    if (s > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t begin = clamp(bound(start, "indices"), s > 0 ? 0 : n - 1);
  int64_t end = clamp(bound(stop, "indices"), s > 0 ? n : -1);
  ValueList out;
  for (int64_t i = begin; s > 0 ? i < end : i > end; i += s)
    out.push_back(items[static_cast<size_t>(i)]);
  if (object.is_string()) {
    std::string text;
    for (const Value& c : out) text += c.AsString();
    return Value(text);
  }
  return object.kind() == Value::Kind::kTuple ? Value::Tuple(std::move(out))
                                              : Value::List(std::move(out));
}

std::vector<Value> BindArgs(CallArgs& args, std::string_view function,
                            const std::vector<Param>& params) {
  if (args.positional.size() > params.size()) {
    ThrowPython("TypeError", Cat(function, "() takes at most ", params.size(), " arguments (",
                                 args.positional.size(), " given)"));
  }
  std::vector<std::optional<Value>> bound(params.size());
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (auto& keyword : args.keyword) {
    const std::string& key = keyword.first;
    const Value& value = keyword.second;
    auto it =
        std::find_if(params.begin(), params.end(), [&](const Param& p) { return p.name == key; });
    if (it == params.end()) {
      ThrowPython("TypeError", Cat(function, "() got an unexpected keyword argument '", key, "'"));
    }
    size_t index = static_cast<size_t>(it - params.begin());
    if (bound[index])
      ThrowPython("TypeError", Cat(function, "() got multiple values for argument '", key, "'"));
    bound[index] = value;
  }
  std::vector<Value> out;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!bound[i]) {
      if (!params[i].fallback) {
        ThrowPython("TypeError",
                    Cat(function, "() missing required argument '", params[i].name, "'"));
      }
      bound[i] = params[i].fallback;
    }
    out.push_back(*bound[i]);
  }
  return out;
}

}  // namespace whale::jinja
