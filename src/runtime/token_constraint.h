// Forced tool calls (tool_choice "required" or naming a function, spec openai-api.md 6.5): the
// output is a call in DeepSeek's native syntax whatever the weights are,
//
//   [</think>]<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n
//   ARGS\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>
//
// so that ChatOutputParser turns it into one OpenAI tool call. The fixed text is forced token by
// token; NAME must spell one of the allowed names (any tokenization of it); ARGS must be a JSON
// object (JsonPrefix checks the bytes of every candidate token). The token budget is part of the
// check: a candidate is allowed only if, after it, the shortest way to finish (name, closing
// brackets and strings one byte token each, then the suffix) still fits, so the call always ends
// validly and within max_tokens.
//
// ToolCallGrammar is built once per request; each choice runs its own TokenConstraint:
// Allows(token) checks one candidate (cheap: sample first, check, mask only when it fails),
// Mask(logits) sets every disallowed logit to -inf, Accept(token) advances.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/json_prefix.h"
#include "tokenizer/tokenizer.h"

namespace whale {

// The bytes of every token id of a byte-level tokenizer, computed once, with the ids grouped by
// their first byte so a mask visits only tokens that can start with an allowed byte.
class VocabBytes {
 public:
  // Throws Error unless the tokenizer has a ByteLevel decoder.
  explicit VocabBytes(const Tokenizer& tokenizer);

  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }
  std::string_view bytes(int32_t id) const {
    return std::string_view(data_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  bool special(int32_t id) const { return special_[id] != 0; }
  // The ordinary (non-special) token that is exactly this one byte, or -1.
  int32_t byte_token(uint8_t byte) const { return byte_token_[byte]; }
  // Ordinary tokens whose bytes start with `byte`.
  std::span<const int32_t> starting_with(uint8_t byte) const {
    return std::span<const int32_t>(by_first_).subspan(first_[byte],
                                                       first_[byte + 1] - first_[byte]);
  }

 private:
  std::string data_;               // all tokens' bytes, concatenated
  std::vector<uint32_t> offsets_;  // [size + 1] into data_
  std::vector<uint8_t> special_;   // [size]
  std::array<int32_t, 256> byte_token_;
  std::vector<int32_t> by_first_;      // ordinary non-empty tokens sorted by first byte
  std::array<uint32_t, 257> first_{};  // [256 + 1] into by_first_
};

struct ToolCallGrammar {
  std::shared_ptr<const VocabBytes> vocab;
  std::vector<int32_t> prefix;  // forced first (up to <｜tool▁sep｜>, or through NAME + fence)
  // "NAME\n```json\n" for each allowed NAME, spelled by free tokens after the prefix; empty
  // when the prefix spells the one NAME.
  std::vector<std::string> targets;
  std::vector<int32_t> suffix;  // forced after the arguments' closing brace

  // close_think: the prompt left <think> open; the call follows "</think>" at once (no
  // reasoning). `names`: the allowed functions; `named`: exactly names[0], spelled in the prefix.
  // Throws Error when the vocabulary lacks a single-byte token the guarantee needs.
  static std::shared_ptr<const ToolCallGrammar> Make(const Tokenizer& tokenizer,
                                                     std::shared_ptr<const VocabBytes> vocab,
                                                     bool close_think,
                                                     std::vector<std::string> names, bool named);
  // The fewest tokens any forced call takes (a budget below it cannot hold a call).
  int64_t MinTokens() const;
};

class TokenConstraint {
 public:
  // Whitespace in a row outside strings in the arguments (pretty-printing to depth 7 fits).
  static constexpr int kMaxSpaceRun = 16;

  // `budget`: the tokens this choice may generate. Throws Error below grammar->MinTokens().
  TokenConstraint(std::shared_ptr<const ToolCallGrammar> grammar, int64_t budget);

  bool Allows(int32_t token) const;
  // logits[id] = -inf for every disallowed id (ids past the tokenizer's vocabulary included).
  void Mask(std::span<float> logits);
  // Advances past `token`, which must be allowed.
  void Accept(int32_t token);
  // The call is complete; the choice ends here.
  bool done() const { return phase_ == Phase::kDone; }

 private:
  enum class Phase { kPrefix, kName, kArgs, kSuffix, kDone };

  // Tokens needed after the current one, when the name text would be `name` (a prefix of a
  // target) or the arguments would be in `json` state; -1 when `name` begins no target.
  int64_t NameNeeds(std::string_view name) const;
  int64_t ArgsNeeds(const JsonPrefix& json) const;
  bool AllowsName(std::string_view bytes) const;
  bool AllowsArgs(std::string_view bytes) const;
  bool SafeArgs(std::string_view bytes) const;  // no parser marker inside the arguments

  std::shared_ptr<const ToolCallGrammar> grammar_;
  Phase phase_ = Phase::kPrefix;
  int64_t left_;                         // tokens still allowed, the next one included
  size_t forced_ = 0;                    // kPrefix / kSuffix: position in the forced tokens
  std::string name_;                     // kName: the target text so far
  JsonPrefix json_{true, kMaxSpaceRun};  // kArgs
  std::string tail_;                     // kArgs: the last bytes of the arguments (marker check)
  std::vector<int32_t> allowed_;         // Mask() scratch: [<= vocab]
  std::vector<float> kept_;              // [<= vocab] their logits
};

}  // namespace whale
