// Jinja's tests (`x is defined`, `x is divisibleby 3`, ...), with Python semantics.
#include <map>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_parser.h"

namespace whale::jinja {

namespace {

using Test = bool (*)(const Value& value, CallArgs& args);

std::vector<Value> Bind(CallArgs& args, std::string_view name, const std::vector<Param>& params) {
  return BindArgs(args, name, params);
}

bool Compare(const Value& value, CallArgs& args, const char* name, int op) {
  auto a = Bind(args, name, {{"other", std::nullopt}});
  switch (op) {
    case 0:
      return value.Equals(a[0]);
    case 1:
      return !value.Equals(a[0]);
    case 2:
      return value.Less(a[0]);
    case 3:
      return value.Less(a[0]) || value.Equals(a[0]);
    case 4:
      return a[0].Less(value);
    default:
      return a[0].Less(value) || value.Equals(a[0]);
  }
}

bool NoArgs(CallArgs& args, const char* name) {
  Bind(args, name, {});
  return true;
}

const std::map<std::string, Test, std::less<>>& Tests() {
  static const std::map<std::string, Test, std::less<>> tests = {
      {"defined",
       [](const Value& v, CallArgs& a) { return NoArgs(a, "defined") && !v.is_undefined(); }},
      {"undefined",
       [](const Value& v, CallArgs& a) { return NoArgs(a, "undefined") && v.is_undefined(); }},
      {"none", [](const Value& v, CallArgs& a) { return NoArgs(a, "none") && v.is_none(); }},
      {"boolean",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "boolean") && v.kind() == Value::Kind::kBool;
       }},
      {"true",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "true") && v.kind() == Value::Kind::kBool && v.AsBool();
       }},
      {"false",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "false") && v.kind() == Value::Kind::kBool && !v.AsBool();
       }},
      {"string", [](const Value& v, CallArgs& a) { return NoArgs(a, "string") && v.is_string(); }},
      {"number", [](const Value& v, CallArgs& a) { return NoArgs(a, "number") && v.is_number(); }},
      {"integer",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "integer") && v.kind() == Value::Kind::kInt;
       }},
      {"float", [](const Value& v,
                   CallArgs& a) { return NoArgs(a, "float") && v.kind() == Value::Kind::kFloat; }},
      {"mapping", [](const Value& v, CallArgs& a) { return NoArgs(a, "mapping") && v.is_dict(); }},
      {"iterable",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "iterable") &&
                (v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict());
       }},
      {"sequence",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "sequence") &&
                (v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict());
       }},
      {"callable",
       [](const Value& v, CallArgs& a) {
         return NoArgs(a, "callable") && v.kind() == Value::Kind::kFunction;
       }},
      {"escaped", [](const Value&, CallArgs& a) { return NoArgs(a, "escaped") && false; }},
      {"lower",
       [](const Value& v, CallArgs& a) {
         NoArgs(a, "lower");
         CallArgs none;
         return GetAttribute(Value(v.Str()), "islower").AsFunction().call(none).Truthy();
       }},
      {"upper",
       [](const Value& v, CallArgs& a) {
         NoArgs(a, "upper");
         CallArgs none;
         return GetAttribute(Value(v.Str()), "isupper").AsFunction().call(none).Truthy();
       }},
      {"odd", [](const Value& v, CallArgs& a) { return NoArgs(a, "odd") && v.AsInt() % 2 != 0; }},
      {"even", [](const Value& v, CallArgs& a) { return NoArgs(a, "even") && v.AsInt() % 2 == 0; }},
      {"divisibleby",
       [](const Value& v, CallArgs& args) {
         auto a = Bind(args, "divisibleby", {{"num", std::nullopt}});
         if (a[0].AsInt() == 0)
           ThrowPython("ZeroDivisionError", "integer division or modulo by zero");
         return v.AsInt() % a[0].AsInt() == 0;
       }},
      {"sameas",
       [](const Value& v, CallArgs& args) {
         auto a = Bind(args, "sameas", {{"other", std::nullopt}});
         if (v.kind() != a[0].kind()) return false;
         return v.is_none() || v.is_undefined() || v.Equals(a[0]);
       }},
      {"in",
       [](const Value& v, CallArgs& args) {
         auto a = Bind(args, "in", {{"seq", std::nullopt}});
         if (a[0].is_string())
           return v.is_string() && a[0].AsString().find(v.AsString()) != std::string::npos;
         if (a[0].is_dict()) return a[0].AsDict().Find(v) != nullptr;
         for (const Value& item : IterateValue(a[0])) {
           if (item.Equals(v)) return true;
         }
         return false;
       }},
      {"filter",
       [](const Value& v, CallArgs& a) { return NoArgs(a, "filter") && IsKnownFilter(v.Str()); }},
      {"test",
       [](const Value& v, CallArgs& a) { return NoArgs(a, "test") && IsKnownTest(v.Str()); }},
      {"eq", [](const Value& v, CallArgs& a) { return Compare(v, a, "eq", 0); }},
      {"equalto", [](const Value& v, CallArgs& a) { return Compare(v, a, "equalto", 0); }},
      {"==", [](const Value& v, CallArgs& a) { return Compare(v, a, "==", 0); }},
      {"ne", [](const Value& v, CallArgs& a) { return Compare(v, a, "ne", 1); }},
      {"!=", [](const Value& v, CallArgs& a) { return Compare(v, a, "!=", 1); }},
      {"lt", [](const Value& v, CallArgs& a) { return Compare(v, a, "lt", 2); }},
      {"lessthan", [](const Value& v, CallArgs& a) { return Compare(v, a, "lessthan", 2); }},
      {"<", [](const Value& v, CallArgs& a) { return Compare(v, a, "<", 2); }},
      {"le", [](const Value& v, CallArgs& a) { return Compare(v, a, "le", 3); }},
      {"<=", [](const Value& v, CallArgs& a) { return Compare(v, a, "<=", 3); }},
      {"gt", [](const Value& v, CallArgs& a) { return Compare(v, a, "gt", 4); }},
      {"greaterthan", [](const Value& v, CallArgs& a) { return Compare(v, a, "greaterthan", 4); }},
      {">", [](const Value& v, CallArgs& a) { return Compare(v, a, ">", 4); }},
      {"ge", [](const Value& v, CallArgs& a) { return Compare(v, a, "ge", 5); }},
      {">=", [](const Value& v, CallArgs& a) { return Compare(v, a, ">=", 5); }},
  };
  return tests;
}

}  // namespace

bool IsKnownTest(std::string_view name) {
  return Tests().count(name) > 0;
}

bool CallTest(const std::string& name, const Value& value, CallArgs& args) {
  auto it = Tests().find(name);
  if (it == Tests().end())
    ThrowPython("TemplateRuntimeError", Cat("No test named '", name, "' found."));
  return it->second(value, args);
}

}  // namespace whale::jinja
