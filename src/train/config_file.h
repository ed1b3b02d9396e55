// Settings files of the training commands (`whale train --config`, `whale grpo --config`): the
// JSON document, and its fields read into plain config structs with errors that name the file,
// the field, the value found and the type expected.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace whale {

// Parses the JSON file at `path`; `what` names the kind of file in errors ("training config").
nlohmann::json ReadJsonConfigFile(const std::string& path, const std::string& what);

// Reads one field: bool, integer (unsigned ones refuse negatives), floating point, string or
// array of strings. Throws Error "SOURCE: field "KEY" is VALUE; expected TYPE" on a mismatch.
template <typename T>
void ReadConfigField(const nlohmann::json& j, T& field, const std::string& key,
                     const std::string& source) {
  bool ok = false;
  const char* expected = "";
  if constexpr (std::is_same_v<T, bool>) {
    ok = j.is_boolean();
    expected = "a boolean";
  } else if constexpr (std::is_integral_v<T>) {
    ok = j.is_number_integer() && (!std::is_unsigned_v<T> || j.get<int64_t>() >= 0);
    expected = std::is_unsigned_v<T> ? "a non-negative integer" : "an integer";
  } else if constexpr (std::is_arithmetic_v<T>) {
    ok = j.is_number();
    expected = "a number";
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = j.is_string();
    expected = "a string";
  } else {
    static_assert(std::is_same_v<T, std::vector<std::string>>, "unsupported config field type");
    ok = j.is_array();
    for (const auto& item : j) ok = ok && item.is_string();
    expected = "an array of strings";
  }
  if (!ok) Fail(source, ": field \"", key, "\" is ", j.dump(), "; expected ", expected);
  field = j.get<T>();
}

}  // namespace whale
