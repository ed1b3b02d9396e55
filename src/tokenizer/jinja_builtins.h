// Jinja's runtime library as transformers configures it: attribute and item lookup through the
// immutable sandbox (mutating methods refused), Python str/list/dict methods, the built-in filters
// (with transformers' tojson), tests, and the globals range/dict/namespace/raise_exception/
// strftime_now.
#pragma once

#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace whale::jinja {

// environment.getattr / getitem of the sandboxed environment.
Value GetAttribute(const Value& object, const std::string& name);
Value GetItem(const Value& object, const Value& key);
// object[start:stop:step] for str, list and tuple (null Values = omitted bounds).
Value Slice(const Value& object, const Value& start, const Value& stop, const Value& step);

Value CallFilter(const std::string& name, const Value& value, CallArgs& args);
bool CallTest(const std::string& name, const Value& value, CallArgs& args);

// The globals: range, dict, namespace, raise_exception, strftime_now (formats `now()`).
Dict MakeGlobals(const std::function<std::tm()>& now);

// Binds call arguments to a signature: parameters in order, each with an optional default; raises
// TypeError like Python for missing, duplicate or unexpected arguments.
struct Param {
  std::string name;
  std::optional<Value> fallback;
};
std::vector<Value> BindArgs(CallArgs& args, std::string_view function,
                            const std::vector<Param>& params);

// Python helpers shared by filters and methods.
std::string PythonStrip(std::string_view s, const Value& chars, bool left, bool right);
// Iterates like Python's iter(), failing with TypeError for non-iterables.
ValueList IterateValue(const Value& value);

}  // namespace whale::jinja
