// The {"String": ...} / {"Regex": ...} pattern objects of tokenizer.json (Split, Replace).
#pragma once

#include <string>

#include "tokenizer/json_fields.h"
#include "tokenizer/regex.h"

namespace whale {

inline Regex ParsePattern(const nlohmann::json& pattern, const std::string& where) {
  namespace jf = json_fields;
  if (jf::Has(pattern, "String")) {
    return Regex::Literal(jf::String(pattern, "String", where), where + ".String");
  }
  if (jf::Has(pattern, "Regex")) {
    return Regex(jf::String(pattern, "Regex", where), where + ".Regex");
  }
  jf::WrongType(where, pattern, "{\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace whale
