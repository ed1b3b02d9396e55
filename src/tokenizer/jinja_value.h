// jinja::Value: the Python values a chat template computes with (None, bool, int, float, str,
// list, tuple, dict, namespace, callables) plus Jinja's lenient Undefined, with Python's semantics
// for printing, truthiness, equality and ordering — what transformers' Jinja environment shows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/error.h"

namespace whale::jinja {

// A template failed to render: syntax errors (with line and column), Python errors at render time
// (TypeError, UndefinedError, SecurityError, ...). The message is one line.
class TemplateError : public Error {
 public:
  using Error::Error;
};

// The template called raise_exception(message): the conversation was rejected by the template's own
// rules (servers answer 400). what() is the template's message.
class TemplateRaised : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class Value;
using ValueList = std::vector<Value>;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<Value(CallArgs& args)>;

struct Function {
  std::string name;  // for messages and repr
  NativeFunction call;
};

// A dict keeps insertion order, like Python's.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* Find(const Value& key) const;
  Value* Find(const Value& key);
  void Set(Value key, Value value);
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kNamespace,  // jinja2 namespace(): a mutable attribute bag (also used for `loop`)
    kFunction,
  };

  Value() = default;  // Undefined
  static Value Undefined(std::string hint = "", std::string unsafe_error = "");
  static Value None();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double d);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  static Value List(ValueList items);
  static Value Tuple(ValueList items);
  static Value MakeDict(Dict dict);
  static Value MakeNamespace(Dict attributes, std::string type_name = "Namespace");
  static Value MakeFunction(std::string name, NativeFunction call);
  // Lists and dicts from JSON (objects keep their key order).
  static Value FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const {
    return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool;
  }
  bool is_integer() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }

  bool AsBool() const { return bool_; }
  int64_t AsInt() const { return kind_ == Kind::kBool ? (bool_ ? 1 : 0) : int_; }
  double AsDouble() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(AsInt()); }
  const std::string& AsString() const { return *string_; }
  const ValueList& AsList() const { return *list_; }
  const Dict& AsDict() const { return *dict_; }
  Dict& MutableDict() const { return *dict_; }  // namespaces only
  const Function& AsFunction() const { return *function_; }
  const std::string& undefined_hint() const { return *string_; }
  const std::string& unsafe_error() const { return unsafe_; }
  const std::string& type_name() const;  // namespace object name

  // Python's type name for messages ("str", "NoneType", "dict", ...).
  std::string PythonTypeName() const;

  bool Truthy() const;
  // str(v): what {{ v }} prints (Undefined prints nothing).
  std::string Str() const;
  // repr(v).
  std::string Repr() const;
  // Python ==.
  bool Equals(const Value& other) const;
  // Python <, or TypeError for types that do not order.
  bool Less(const Value& other) const;

  // Elements when iterating (list/tuple items, dict keys, string characters; Undefined is empty);
  // TypeError for the rest.
  ValueList Iterate() const;
  // len(v), or TypeError.
  int64_t Length() const;

  // json.dumps(v, ensure_ascii, indent, separators, sort_keys), or TypeError for unserializable
  // values. indent < 0 means None.
  std::string ToJson(bool ensure_ascii, int indent, const std::string& item_separator,
                     const std::string& key_separator, bool sort_keys) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> string_;  // string value, or Undefined's hint
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> function_;
  std::string unsafe_;  // Undefined from a refused attribute: the SecurityError to raise on use
};

// Python float repr ("1.0", "0.1", "1e+16", "1e-05", "inf", "nan").
std::string PythonFloatRepr(double value);
// Python's repr() of a str.
std::string PythonStringRepr(std::string_view s);

// Raises a TemplateError naming the Python exception type.
[[noreturn]] void ThrowPython(std::string_view exception_type, std::string_view message);

}  // namespace whale::jinja
