// Typed access to tokenizer.json / tokenizer_config.json fields with errors that name the file, the
// field path, the value found and what was expected.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/error.h"

namespace whale::json_fields {

using Json = nlohmann::json;

inline std::string TypeName(const Json& value) {
  return value.type_name();
}

// A short rendering of a value for error messages.
inline std::string Show(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

inline std::string Path(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : Cat(where, ".", key);
}

[[noreturn]] inline void WrongType(const std::string& where, const Json& value,
                                   std::string_view expected) {
  Fail(where, ": expected ", expected, ", found ", TypeName(value), " ", Show(value));
}

inline const Json& Require(const Json& object, std::string_view key, const std::string& where) {
  if (!object.is_object()) WrongType(where, object, "an object");
  auto it = object.find(key);
  if (it == object.end()) Fail(Path(where, key), ": required field is missing");
  return *it;
}

// Present and not null.
inline bool Has(const Json& object, std::string_view key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

inline std::string String(const Json& object, std::string_view key, const std::string& where) {
  const Json& value = Require(object, key, where);
  if (!value.is_string()) WrongType(Path(where, key), value, "a string");
  return value.get<std::string>();
}

inline std::string StringOr(const Json& object, std::string_view key, std::string fallback,
                            const std::string& where) {
  if (!Has(object, key)) return fallback;
  return String(object, key, where);
}

inline bool BoolOr(const Json& object, std::string_view key, bool fallback,
                   const std::string& where) {
  if (!Has(object, key)) return fallback;
  const Json& value = object.at(std::string(key));
  if (!value.is_boolean()) WrongType(Path(where, key), value, "true or false");
  return value.get<bool>();
}

inline int64_t IntOr(const Json& object, std::string_view key, int64_t fallback,
                     const std::string& where) {
  if (!Has(object, key)) return fallback;
  const Json& value = object.at(std::string(key));
  if (!value.is_number_integer()) WrongType(Path(where, key), value, "an integer");
  return value.get<int64_t>();
}

inline int32_t TokenIdValue(const Json& value, const std::string& where) {
  if (!value.is_number_integer()) WrongType(where, value, "a token id (integer)");
  int64_t id = value.get<int64_t>();
  if (id < 0 || id > INT32_MAX) Fail(where, ": token id ", id, " is out of range [0, 2^31)");
  return static_cast<int32_t>(id);
}

// Bounds the recursion over nested components (Sequence of Sequence of ...), so a hostile file
// fails with an error instead of exhausting the stack.
class NestingGuard {
 public:
  explicit NestingGuard(const std::string& where) {
    if (++Depth() > kMaxDepth) {
      --Depth();
      Fail(where, ": components nested more than ", kMaxDepth, " levels deep");
    }
  }
  ~NestingGuard() { --Depth(); }
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;

 private:
  static constexpr int kMaxDepth = 64;
  static int& Depth() {
    thread_local int depth = 0;
    return depth;
  }
};

}  // namespace whale::json_fields
