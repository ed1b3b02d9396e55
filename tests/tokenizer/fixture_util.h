// Helpers shared by the tokenizer tests: fixture paths and JSON loading.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "io/mapped_file.h"

namespace whale::testing {

inline std::string TokenizerData(const std::string& relative) {
  return std::string(WHALE_TEST_DATA) + "/tokenizer/" + relative;
}

inline nlohmann::json LoadJson(const std::string& path) {
  return nlohmann::json::parse(ReadTextFile(path));
}

inline nlohmann::ordered_json LoadOrderedJson(const std::string& path) {
  return nlohmann::ordered_json::parse(ReadTextFile(path));
}

// Renders a string with control and non-ASCII bytes escaped, for readable failure messages.
inline std::string Escaped(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

}  // namespace whale::testing
