// Filters, tests and globals (Jinja 3.1 behaviour; tojson is transformers' json.dumps override).
#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tokenizer/jinja_parser.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace whale::jinja {

namespace {

using Filter = Value (*)(const Value& value, CallArgs& args);

// The first positional argument of a filter/test call (it follows the piped value).
std::vector<Value> Bind(CallArgs& args, std::string_view name, const std::vector<Param>& params) {
  return BindArgs(args, name, params);
}

std::string SoftStr(const Value& v) {
  return v.Str();
}

// Attribute access for filters' attribute= arguments ("a.b" and integer parts like "0").
Value ResolveAttribute(const Value& item, const Value& attribute) {
  if (attribute.is_integer()) return GetItem(item, attribute);
  Value current = item;
  std::string path = attribute.Str();
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? GetItem(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : GetAttribute(current, part);
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// Sort key with Jinja's case-insensitive default for strings.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(unicode::PythonLower(v.AsString()));
  return v;
}

ValueList SortValues(ValueList items, bool reverse, bool case_sensitive, const Value& attribute) {
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) {
    Value key = attribute.is_none() ? item : ResolveAttribute(item, attribute);
    keyed.emplace_back(SortKey(key, case_sensitive), std::move(item));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? b.first.Less(a.first) : a.first.Less(b.first);
  });
  ValueList out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return out;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Python printf-style formatting (value % args): %s %r %d %i %f %x %% with flags, width and
// precision.
std::string PercentFormat(const std::string& fmt, const Value& args) {
  ValueList values = args.kind() == Value::Kind::kTuple ? args.AsList() : ValueList{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t j = i + 1;
    std::string spec = "%";
    while (j < fmt.size() && std::string_view("-+ #0").find(fmt[j]) != std::string_view::npos)
      spec += fmt[j++];
    while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) spec += fmt[j++];
    if (j < fmt.size() && fmt[j] == '.') {
      spec += fmt[j++];
      while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) spec += fmt[j++];
    }
    if (j >= fmt.size()) ThrowPython("ValueError", "incomplete format");
    char conversion = fmt[j];
    i = j;
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) ThrowPython("TypeError", "not enough arguments for format string");
    const Value& v = values[next++];
    char buffer[512];
    switch (conversion) {
      case 's':
      case 'r': {
        std::string text = conversion == 's' ? v.Str() : v.Repr();
        std::snprintf(buffer, sizeof(buffer), (spec + "s").c_str(), text.c_str());
        out += buffer;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o':
        if (!v.is_number())
          ThrowPython("TypeError", Cat("%", conversion, " format: a number is required, not ",
                                       v.PythonTypeName()));
        std::snprintf(
            buffer, sizeof(buffer), (spec + "ll" + (conversion == 'i' ? 'd' : conversion)).c_str(),
            static_cast<long long>(v.kind() == Value::Kind::kFloat ? std::trunc(v.AsDouble())
                                                                   : v.AsInt()));
        out += buffer;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'g':
        if (!v.is_number())
          ThrowPython("TypeError", Cat("must be real number, not ", v.PythonTypeName()));
        std::snprintf(buffer, sizeof(buffer), (spec + conversion).c_str(), v.AsDouble());
        out += buffer;
        break;
      default:
        ThrowPython("ValueError", Cat("unsupported format character '", conversion, "'"));
    }
  }
  if (next < values.size() && args.kind() == Value::Kind::kTuple) {
    ThrowPython("TypeError", "not all arguments converted during string formatting");
  }
  return out;
}

Value FilterTojson(const Value& value, CallArgs& args) {
  auto a = Bind(args, "tojson",
                {{"ensure_ascii", Value(false)},
                 {"indent", Value::None()},
                 {"separators", Value::None()},
                 {"sort_keys", Value(false)}});
  int indent = a[1].is_none() ? -1 : static_cast<int>(a[1].AsInt());
  std::string item_separator = indent >= 0 ? "," : ", ";
  std::string key_separator = ": ";
  if (a[2].is_sequence() && a[2].AsList().size() == 2) {
    item_separator = a[2].AsList()[0].Str();
    key_separator = a[2].AsList()[1].Str();
  }
  return Value(value.ToJson(a[0].Truthy(), indent, item_separator, key_separator, a[3].Truthy()));
}

Value FilterLength(const Value& value, CallArgs& args) {
  Bind(args, "length", {});
  return Value(value.Length());
}

Value FilterDefault(const Value& value, CallArgs& args) {
  auto a = Bind(args, "default", {{"default_value", Value("")}, {"boolean", Value(false)}});
  if (value.is_undefined() || (a[1].Truthy() && !value.Truthy())) return a[0];
  return value;
}

Value FilterTrim(const Value& value, CallArgs& args) {
  auto a = Bind(args, "trim", {{"chars", Value::None()}});
  return Value(PythonStrip(SoftStr(value), a[0], true, true));
}

Value FilterJoin(const Value& value, CallArgs& args) {
  auto a = Bind(args, "join", {{"d", Value("")}, {"attribute", Value::None()}});
  std::string separator = a[0].Str();
  std::string out;
  ValueList items = IterateValue(value);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += (a[1].is_none() ? items[i] : ResolveAttribute(items[i], a[1])).Str();
  }
  return Value(out);
}

Value FilterLower(const Value& value, CallArgs& args) {
  Bind(args, "lower", {});
  return Value(unicode::PythonLower(SoftStr(value)));
}
Value FilterUpper(const Value& value, CallArgs& args) {
  Bind(args, "upper", {});
  return Value(unicode::PythonUpper(SoftStr(value)));
}
Value FilterCapitalize(const Value& value, CallArgs& args) {
  Bind(args, "capitalize", {});
  return Value(unicode::PythonCapitalize(SoftStr(value)));
}
Value FilterTitle(const Value& value, CallArgs& args) {
  // Jinja: words split before runs of '-', whitespace and opening brackets; first char upper, rest
  // lower.
  Bind(args, "title", {});
  std::u32string s = utf8::ToUtf32(SoftStr(value));
  std::string out;
  bool at_word_start = true;
  for (char32_t c : s) {
    bool separator =
        c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::IsPythonSpace(c);
    std::string one = utf8::Encode(c);
    if (separator) {
      out += one;
      at_word_start = true;
    } else {
      out += at_word_start ? unicode::PythonUpper(one) : unicode::PythonLower(one);
      at_word_start = false;
    }
  }
  return Value(out);
}

Value FilterReplace(const Value& value, CallArgs& args) {
  auto a = Bind(args, "replace",
                {{"old", std::nullopt}, {"new", std::nullopt}, {"count", Value::None()}});
  CallArgs method_args{{a[0], a[1]}, {}};
  if (!a[2].is_none()) method_args.positional.push_back(a[2]);
  Value method = GetAttribute(Value(SoftStr(value)), "replace");
  return method.AsFunction().call(method_args);
}

Value FilterItems(const Value& value, CallArgs& args) {
  Bind(args, "items", {});
  if (value.is_undefined()) return Value::List({});
  if (!value.is_dict()) ThrowPython("TypeError", "Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [k, v] : value.AsDict().items) out.push_back(Value::Tuple({k, v}));
  return Value::List(std::move(out));
}

Value FilterList(const Value& value, CallArgs& args) {
  Bind(args, "list", {});
  return Value::List(IterateValue(value));
}

Value FilterFirst(const Value& value, CallArgs& args) {
  Bind(args, "first", {});
  ValueList items = IterateValue(value);
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

Value FilterLast(const Value& value, CallArgs& args) {
  Bind(args, "last", {});
  ValueList items = IterateValue(value);
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

Value FilterString(const Value& value, CallArgs& args) {
  Bind(args, "string", {});
  return Value(SoftStr(value));
}

Value FilterInt(const Value& value, CallArgs& args) {
  auto a = Bind(args, "int", {{"default", Value(int64_t{0})}, {"base", Value(int64_t{10})}});
  if (value.kind() == Value::Kind::kFloat)
    return Value(static_cast<int64_t>(std::trunc(value.AsDouble())));
  if (value.is_integer()) return Value(value.AsInt());
  if (value.is_string()) {
    std::string s = PythonStrip(value.AsString(), Value::None(), true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, static_cast<int>(a[1].AsInt()));
    if (!s.empty() && end == s.c_str() + s.size()) return Value(static_cast<int64_t>(v));
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d))
      return Value(static_cast<int64_t>(d));
  }
  return a[0];
}

Value FilterFloat(const Value& value, CallArgs& args) {
  auto a = Bind(args, "float", {{"default", Value(0.0)}});
  if (value.is_number()) return Value(value.AsDouble());
  if (value.is_string()) {
    std::string s = PythonStrip(value.AsString(), Value::None(), true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value(d);
  }
  return a[0];
}

Value FilterAbs(const Value& value, CallArgs& args) {
  Bind(args, "abs", {});
  if (value.kind() == Value::Kind::kFloat) return Value(std::fabs(value.AsDouble()));
  if (value.is_integer()) return Value(static_cast<int64_t>(std::llabs(value.AsInt())));
  ThrowPython("TypeError", Cat("bad operand type for abs(): '", value.PythonTypeName(), "'"));
}

Value FilterRound(const Value& value, CallArgs& args) {
  auto a = Bind(args, "round", {{"precision", Value(int64_t{0})}, {"method", Value("common")}});
  double scale = std::pow(10.0, static_cast<double>(a[0].AsInt()));
  double x = value.AsDouble() * scale;
  std::string method = a[1].Str();
  double r;
  if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else if (method == "common") {
    r = std::nearbyint(x);  // Python's round(): halves to even
  } else {
    ThrowPython("FilterArgumentError", "method must be common, ceil or floor");
  }
  return Value(r / scale);
}

Value FilterReverse(const Value& value, CallArgs& args) {
  Bind(args, "reverse", {});
  ValueList items = IterateValue(value);
  std::reverse(items.begin(), items.end());
  if (value.is_string()) {
    std::string out;
    for (const Value& c : items) out += c.AsString();
    return Value(out);
  }
  return Value::List(std::move(items));
}

Value FilterSort(const Value& value, CallArgs& args) {
  auto a = Bind(
      args, "sort",
      {{"reverse", Value(false)}, {"case_sensitive", Value(false)}, {"attribute", Value::None()}});
  return Value::List(SortValues(IterateValue(value), a[0].Truthy(), a[1].Truthy(), a[2]));
}

Value FilterDictsort(const Value& value, CallArgs& args) {
  auto a =
      Bind(args, "dictsort",
           {{"case_sensitive", Value(false)}, {"by", Value("key")}, {"reverse", Value(false)}});
  CallArgs none;
  ValueList pairs = FilterItems(value, none).AsList();
  Value index(static_cast<int64_t>(a[1].Str() == "value" ? 1 : 0));
  return Value::List(SortValues(std::move(pairs), a[2].Truthy(), a[0].Truthy(), index));
}

Value FilterUnique(const Value& value, CallArgs& args) {
  auto a = Bind(args, "unique", {{"case_sensitive", Value(false)}, {"attribute", Value::None()}});
  ValueList out, seen;
  for (const Value& item : IterateValue(value)) {
    Value key = SortKey(a[1].is_none() ? item : ResolveAttribute(item, a[1]), a[0].Truthy());
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.Equals(key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::List(std::move(out));
}

Value MinMax(const Value& value, CallArgs& args, bool max) {
  auto a = Bind(args, max ? "max" : "min",
                {{"case_sensitive", Value(false)}, {"attribute", Value::None()}});
  ValueList items = SortValues(IterateValue(value), false, a[0].Truthy(), a[1]);
  if (items.empty()) return Value::Undefined(Cat("No aggregated item, sequence was empty."));
  return max ? items.back() : items.front();
}
Value FilterMax(const Value& value, CallArgs& args) {
  return MinMax(value, args, true);
}
Value FilterMin(const Value& value, CallArgs& args) {
  return MinMax(value, args, false);
}

Value FilterSum(const Value& value, CallArgs& args) {
  auto a = Bind(args, "sum", {{"attribute", Value::None()}, {"start", Value(int64_t{0})}});
  Value total = a[1];
  for (const Value& item : IterateValue(value)) {
    Value x = a[0].is_none() ? item : ResolveAttribute(item, a[0]);
    if (!x.is_number() || !total.is_number()) {
      ThrowPython("TypeError", Cat("unsupported operand type(s) for +: '", total.PythonTypeName(),
                                   "' and '", x.PythonTypeName(), "'"));
    }
    if (x.kind() == Value::Kind::kFloat || total.kind() == Value::Kind::kFloat) {
      total = Value(total.AsDouble() + x.AsDouble());
    } else {
      total = Value(total.AsInt() + x.AsInt());
    }
  }
  return total;
}

Value FilterIndent(const Value& value, CallArgs& args) {
  auto a = Bind(args, "indent",
                {{"width", Value(int64_t{4})}, {"first", Value(false)}, {"blank", Value(false)}});
  std::string indentation =
      a[0].is_string() ? a[0].AsString()
                       : std::string(static_cast<size_t>(std::max<int64_t>(0, a[0].AsInt())), ' ');
  std::string s = SoftStr(value) + "\n";
  Value method = GetAttribute(Value(s), "splitlines");
  CallArgs none;
  ValueList lines = method.AsFunction().call(none).AsList();
  std::string out;
  if (a[2].Truthy()) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) {
        out += '\n';
        out += indentation;
      }
      out += lines[i].AsString();
    }
  } else {
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string& line = lines[i].AsString();
      if (i) {
        out += '\n';
        if (!line.empty()) out += indentation;
      }
      out += line;
    }
  }
  if (a[1].Truthy()) out = indentation + out;
  return Value(out);
}

Value FilterSafe(const Value& value, CallArgs& args) {
  Bind(args, "safe", {});
  return value;
}

Value FilterEscape(const Value& value, CallArgs& args) {
  Bind(args, "escape", {});
  return Value(HtmlEscape(SoftStr(value)));
}

Value FilterFormat(const Value& value, CallArgs& args) {
  if (!args.keyword.empty())
    ThrowPython("FilterArgumentError",
                "can't handle positional and keyword arguments at the same time");
  Value tuple = Value::Tuple(args.positional);
  return Value(
      PercentFormat(SoftStr(value), args.positional.size() == 1 ? args.positional[0] : tuple));
}

Value FilterAttr(const Value& value, CallArgs& args) {
  auto a = Bind(args, "attr", {{"name", std::nullopt}});
  return GetAttribute(value, a[0].Str());
}

Value FilterWordcount(const Value& value, CallArgs& args) {
  Bind(args, "wordcount", {});
  CallArgs none;
  return Value(GetAttribute(Value(SoftStr(value)), "split").AsFunction().call(none).Length());
}

// map(attribute=...) or map('filter', args...)
Value FilterMap(const Value& value, CallArgs& args) {
  ValueList out;
  ValueList items = IterateValue(value);
  bool by_attribute = std::any_of(args.keyword.begin(), args.keyword.end(),
                                  [](const auto& kw) { return kw.first == "attribute"; });
  if (by_attribute || args.positional.empty()) {
    auto a = Bind(args, "map", {{"attribute", std::nullopt}, {"default", Value::Undefined()}});
    for (const Value& item : items) {
      Value v = ResolveAttribute(item, a[0]);
      out.push_back(v.is_undefined() && !a[1].is_undefined() ? a[1] : v);
    }
    return Value::List(std::move(out));
  }
  std::string filter = args.positional[0].Str();
  for (const Value& item : items) {
    CallArgs rest{{args.positional.begin() + 1, args.positional.end()}, args.keyword};
    out.push_back(CallFilter(filter, item, rest));
  }
  return Value::List(std::move(out));
}

// select / reject / selectattr / rejectattr
Value SelectOrReject(const Value& value, CallArgs& args, bool by_attribute, bool keep_when) {
  std::string name =
      by_attribute ? (keep_when ? "selectattr" : "rejectattr") : (keep_when ? "select" : "reject");
  size_t first_test_arg = by_attribute ? 1 : 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty())
      ThrowPython("TypeError", Cat(name, "() missing the attribute argument"));
    attribute = args.positional[0];
  }
  std::string test;
  if (args.positional.size() > first_test_arg) test = args.positional[first_test_arg].Str();
  ValueList out;
  for (const Value& item : IterateValue(value)) {
    Value subject = by_attribute ? ResolveAttribute(item, attribute) : item;
    bool result;
    if (test.empty()) {
      result = subject.Truthy();
    } else {
      CallArgs test_args{{args.positional.begin() + static_cast<std::ptrdiff_t>(first_test_arg) + 1,
                          args.positional.end()},
                         args.keyword};
      result = CallTest(test, subject, test_args);
    }
    if (result == keep_when) out.push_back(item);
  }
  return Value::List(std::move(out));
}
Value FilterSelect(const Value& v, CallArgs& a) {
  return SelectOrReject(v, a, false, true);
}
Value FilterReject(const Value& v, CallArgs& a) {
  return SelectOrReject(v, a, false, false);
}
Value FilterSelectattr(const Value& v, CallArgs& a) {
  return SelectOrReject(v, a, true, true);
}
Value FilterRejectattr(const Value& v, CallArgs& a) {
  return SelectOrReject(v, a, true, false);
}

const std::map<std::string, Filter, std::less<>>& Filters() {
  static const std::map<std::string, Filter, std::less<>> filters = {
      {"abs", FilterAbs},
      {"attr", FilterAttr},
      {"capitalize", FilterCapitalize},
      {"count", FilterLength},
      {"d", FilterDefault},
      {"default", FilterDefault},
      {"dictsort", FilterDictsort},
      {"e", FilterEscape},
      {"escape", FilterEscape},
      {"first", FilterFirst},
      {"float", FilterFloat},
      {"format", FilterFormat},
      {"indent", FilterIndent},
      {"int", FilterInt},
      {"items", FilterItems},
      {"join", FilterJoin},
      {"last", FilterLast},
      {"length", FilterLength},
      {"list", FilterList},
      {"lower", FilterLower},
      {"map", FilterMap},
      {"max", FilterMax},
      {"min", FilterMin},
      {"reject", FilterReject},
      {"rejectattr", FilterRejectattr},
      {"replace", FilterReplace},
      {"reverse", FilterReverse},
      {"round", FilterRound},
      {"safe", FilterSafe},
      {"select", FilterSelect},
      {"selectattr", FilterSelectattr},
      {"sort", FilterSort},
      {"string", FilterString},
      {"sum", FilterSum},
      {"title", FilterTitle},
      {"tojson", FilterTojson},
      {"trim", FilterTrim},
      {"unique", FilterUnique},
      {"upper", FilterUpper},
      {"wordcount", FilterWordcount},
  };
  return filters;
}

}  // namespace

bool IsKnownFilter(std::string_view name) {
  return Filters().count(name) > 0;
}

Value CallFilter(const std::string& name, const Value& value, CallArgs& args) {
  auto it = Filters().find(name);
  if (it == Filters().end())
    ThrowPython("TemplateRuntimeError", Cat("No filter named '", name, "' found."));
  return it->second(value, args);
}

Dict MakeGlobals(const std::function<std::tm()>& now) {
  Dict globals;
  globals.Set(Value("range"), Value::MakeFunction("range", [](CallArgs& args) {
                if (!args.keyword.empty())
                  ThrowPython("TypeError", "range() takes no keyword arguments");
                std::vector<int64_t> n;
                for (const Value& v : args.positional) {
                  if (!v.is_integer())
                    ThrowPython("TypeError", Cat("'", v.PythonTypeName(),
                                                 "' object cannot be interpreted as an integer"));
                  n.push_back(v.AsInt());
                }
                if (n.empty() || n.size() > 3)
                  ThrowPython("TypeError", Cat("range expected 1 to 3 arguments, got ", n.size()));
                int64_t start = n.size() == 1 ? 0 : n[0];
                int64_t stop = n.size() == 1 ? n[0] : n[1];
                int64_t step = n.size() == 3 ? n[2] : 1;
                if (step == 0) ThrowPython("ValueError", "range() arg 3 must not be zero");
                int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                         : (start > stop ? (start - stop - step - 1) / -step : 0);
                // The sandbox limits ranges to MAX_RANGE items.
                if (count > 100000)
                  ThrowPython(
                      "OverflowError",
                      "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                ValueList out;
                for (int64_t i = 0; i < count; ++i) out.emplace_back(start + i * step);
                return Value::List(std::move(out));
              }));
  globals.Set(Value("dict"), Value::MakeFunction("dict", [](CallArgs& args) {
                Dict d;
                if (args.positional.size() > 1)
                  ThrowPython("TypeError", "dict expected at most 1 argument");
                if (args.positional.size() == 1) {
                  if (args.positional[0].is_dict()) {
                    d = args.positional[0].AsDict();
                  } else {
                    for (const Value& pair : IterateValue(args.positional[0])) {
                      ValueList kv = IterateValue(pair);
                      if (kv.size() != 2)
                        ThrowPython("ValueError",
                                    "dictionary update sequence element has wrong length");
                      d.Set(kv[0], kv[1]);
                    }
                  }
                }
                for (auto& [k, v] : args.keyword) d.Set(Value(k), v);
                return Value::MakeDict(std::move(d));
              }));
  globals.Set(Value("namespace"), Value::MakeFunction("namespace", [](CallArgs& args) {
                Dict attributes;
                for (const Value& v : args.positional) {
                  if (!v.is_dict())
                    ThrowPython("TypeError", "namespace() positional arguments must be dicts");
                  for (const auto& [k, value] : v.AsDict().items) attributes.Set(k, value);
                }
                for (auto& [k, v] : args.keyword) attributes.Set(Value(k), v);
                return Value::MakeNamespace(std::move(attributes));
              }));
  globals.Set(Value("raise_exception"),
              Value::MakeFunction("raise_exception", [](CallArgs& args) -> Value {
                auto a = BindArgs(args, "raise_exception", {{"message", std::nullopt}});
                throw TemplateRaised(a[0].Str());
              }));
  globals.Set(Value("strftime_now"), Value::MakeFunction("strftime_now", [now](CallArgs& args) {
                auto a = BindArgs(args, "strftime_now", {{"format", std::nullopt}});
                std::tm time = now();
                std::string format = a[0].Str();
                char buffer[512];
                size_t n = format.empty()
                               ? 0
                               : std::strftime(buffer, sizeof(buffer), format.c_str(), &time);
                return Value(std::string(buffer, n));
              }));
  return globals;
}

}  // namespace whale::jinja
