// ChatTemplate: renders a conversation with the checkpoint's own Jinja chat template exactly as
// transformers' apply_chat_template(tokenize=False) does (sandboxed Jinja with trim_blocks and
// lstrip_blocks, loop controls, {% generation %}, json.dumps-style tojson, raise_exception and
// strftime_now). When a checkpoint has no template, whale's built-in DeepSeek-V3 format is used and
// is_builtin() says so.
//
// The rendered prompt already contains BOS: encode it with add_special_tokens=false.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"
#include "tokenizer/tokenizer_config.h"

namespace whale {

using ChatTemplateError = jinja::TemplateError;
// The template rejected the conversation with raise_exception() (servers answer 400).
using ChatTemplateRaised = jinja::TemplateRaised;

class ChatTemplate {
 public:
  struct Options {
    bool add_generation_prompt = false;
    // null or an array of tool schemas ({"type": "function", "function": {...}}).
    nlohmann::ordered_json tools = nullptr;
    // Further template variables (enable_thinking, date_string, ...); they override the special
    // tokens but not messages/tools/add_generation_prompt.
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    // The clock strftime_now() reads (default: the local time now).
    std::optional<std::tm> now;
  };

  // The checkpoint's template (DIR/chat_template.jinja, else tokenizer_config.json's
  // chat_template); the built-in DeepSeek-V3 format when it has none. Syntax errors are reported
  // here.
  static ChatTemplate FromModelDir(const std::string& dir);
  // From an already loaded config (e.g. Tokenizer::config()); `model` names the checkpoint in
  // messages.
  static ChatTemplate FromConfig(const TokenizerConfig& config, const std::string& model);
  // One template source; `origin` names it in errors; `special_tokens` are variables such as
  // {"bos_token", "<s>"}.
  static ChatTemplate FromSource(
      const std::string& source, const std::string& origin,
      std::vector<std::pair<std::string, std::string>> special_tokens = {});
  // whale's DeepSeek-V3 format. Special tokens default to DeepSeek-V3's BOS/EOS.
  static ChatTemplate BuiltinDeepSeek(
      std::vector<std::pair<std::string, std::string>> special_tokens = {});
  // The source of the built-in format.
  static const std::string& BuiltinDeepSeekSource();

  // Renders `messages` (a JSON array of message objects; key order is kept). Throws
  // ChatTemplateRaised when the template calls raise_exception, ChatTemplateError for any other
  // failure (with the template's line and column), Error for malformed arguments.
  std::string Render(const nlohmann::ordered_json& messages, const Options& options) const;
  std::string Render(const nlohmann::ordered_json& messages,
                     bool add_generation_prompt = false) const;
  // Same for nlohmann::json, whose objects are sorted by key (use ordered_json to keep the order
  // of tool-call arguments).
  std::string Render(const nlohmann::json& messages, bool add_generation_prompt = false) const;

  bool is_builtin() const { return builtin_; }
  // Where the template came from ("DIR/tokenizer_config.json", or a sentence for the built-in one).
  const std::string& origin() const { return origin_; }
  // Template names ("default", "tool_use", ...).
  std::vector<std::string> names() const;

  struct Program;  // a parsed template (internal)

 private:
  ChatTemplate() = default;
  std::vector<std::pair<std::string, std::shared_ptr<const Program>>> templates_;
  std::vector<std::pair<std::string, std::string>> special_tokens_;
  std::vector<std::string> additional_special_tokens_;
  std::string origin_;
  bool builtin_ = false;
};

}  // namespace whale
