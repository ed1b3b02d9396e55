// PostProcessor: tokenizer.json's "post_processor" (or the BOS/EOS template transformers builds
// from tokenizer_config.json), which adds special tokens around an encoded sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace whale {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of one encoded sequence. Without add_special_tokens only the sequence remains.
  virtual void Process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;

  // nullptr for JSON null. Unknown types are an error naming the type and `where`.
  static std::unique_ptr<PostProcessor> FromJson(const nlohmann::json& config,
                                                 const std::string& where);
  // `[prefix...] $A [suffix...]`, what transformers' Llama tokenizers build from add_bos_token /
  // add_eos_token.
  static std::unique_ptr<PostProcessor> Wrap(std::vector<int32_t> prefix,
                                             std::vector<int32_t> suffix);
};

}  // namespace whale
