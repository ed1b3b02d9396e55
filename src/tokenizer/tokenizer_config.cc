#include "tokenizer/tokenizer_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "tokenizer/json_fields.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

// A special token is a plain string or {"__type": "AddedToken", "content": ...}.
std::optional<std::string> TokenContent(const Json& value, const std::string& where) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) return jf::String(value, "content", where);
  jf::WrongType(where, value, "a string, an AddedToken object or null");
}

}  // namespace

std::optional<std::string> TokenizerConfig::SpecialToken(const std::string& name) const {
  for (const auto& [key, value] : special_tokens) {
    if (key == name) return value;
  }
  return std::nullopt;
}

TokenizerConfig TokenizerConfig::FromJsonText(const std::string& text, const std::string& source) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& e) {
    Fail(source, ": not valid JSON: ", e.what());
  }
  if (!json.is_object()) jf::WrongType(source, json, "a JSON object");
  TokenizerConfig config;
  config.source = source;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                           "cls_token", "mask_token"}) {
    if (!json.contains(name)) continue;
    auto content = TokenContent(json[name], Cat(source, ": ", name));
    if (content && !content->empty()) config.special_tokens.emplace_back(name, *content);
  }
  if (jf::Has(json, "additional_special_tokens")) {
    const Json& list = json["additional_special_tokens"];
    if (!list.is_array()) {
      jf::WrongType(Cat(source, ": additional_special_tokens"), list, "an array");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      auto content = TokenContent(list[i], Cat(source, ": additional_special_tokens[", i, "]"));
      if (content) config.additional_special_tokens.push_back(*content);
    }
  }
  if (jf::Has(json, "add_bos_token")) {
    config.add_bos_token = jf::BoolOr(json, "add_bos_token", false, source + ":");
  }
  if (jf::Has(json, "add_eos_token")) {
    config.add_eos_token = jf::BoolOr(json, "add_eos_token", false, source + ":");
  }
  config.tokenizer_class = jf::StringOr(json, "tokenizer_class", "", source + ":");
  if (jf::Has(json, "chat_template")) {
    const Json& templates = json["chat_template"];
    config.chat_template_source = source;
    if (templates.is_string()) {
      config.chat_templates.emplace_back("default", templates.get<std::string>());
    } else if (templates.is_array()) {
      for (size_t i = 0; i < templates.size(); ++i) {
        std::string where = Cat(source, ": chat_template[", i, "]");
        config.chat_templates.emplace_back(jf::String(templates[i], "name", where),
                                           jf::String(templates[i], "template", where));
      }
    } else {
      jf::WrongType(Cat(source, ": chat_template"), templates,
                    "a template string or a list of {name, template}");
    }
  }
  return config;
}

TokenizerConfig TokenizerConfig::FromModelDir(const std::string& dir) {
  namespace fs = std::filesystem;
  TokenizerConfig config;
  fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    config = FromJsonText(ReadTextFile(config_path.string()), config_path.string());
  }
  fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja_path)) {
    config.chat_templates = {{"default", ReadTextFile(jinja_path.string())}};
    config.chat_template_source = jinja_path.string();
  }
  return config;
}

}  // namespace whale
