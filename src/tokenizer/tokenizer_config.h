// TokenizerConfig: what transformers reads from a checkpoint's tokenizer_config.json (and
// chat_template.jinja) on top of tokenizer.json: special-token strings, BOS/EOS flags, chat
// templates.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace whale {

struct TokenizerConfig {
  // Special-token strings by name (bos_token, eos_token, unk_token, sep_token, pad_token,
  // cls_token, mask_token), only those set to a non-empty string or AddedToken object. The chat
  // template sees exactly these as variables.
  std::vector<std::pair<std::string, std::string>> special_tokens;
  std::vector<std::string> additional_special_tokens;
  // Present only when the file states them (transformers then rebuilds the post-processor).
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  // Named chat templates; a plain string template is named "default".
  std::vector<std::pair<std::string, std::string>> chat_templates;
  // The file the templates came from (for messages).
  std::string chat_template_source;
  std::string tokenizer_class;
  // The tokenizer_config.json it was read from (empty if none).
  std::string source;

  std::optional<std::string> SpecialToken(const std::string& name) const;

  // Reads DIR/tokenizer_config.json and DIR/chat_template.jinja when present (a missing file gives
  // an empty config). A chat_template.jinja file takes precedence over the config's chat_template.
  // Throws Error naming the file and field for malformed content.
  static TokenizerConfig FromModelDir(const std::string& dir);
  // Parses the text of a tokenizer_config.json; `source` names it in errors.
  static TokenizerConfig FromJsonText(const std::string& text, const std::string& source);
};

}  // namespace whale
