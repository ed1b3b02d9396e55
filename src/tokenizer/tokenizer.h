// Tokenizer: a Hugging Face tokenizer.json (byte-level or SentencePiece-style BPE) that encodes
// text to exactly the ids the Rust `tokenizers` library produces and decodes them back.
//
// Encoding: added tokens are cut out first (non-normalized ones on the raw text, normalized ones
// after normalizing each gap), then each remaining piece is normalized, pre-tokenized and run
// through BPE; the post-processor adds special tokens. Input must be valid UTF-8 (Rust strings
// always are), anything else is rejected with the offset of the first bad byte.
//
// Not applied, as transformers does not apply them either: tokenizer.json's truncation/padding and
// BPE dropout. Decode is the Rust library's (transformers' optional clean_up_tokenization_spaces
// post-pass is not done).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_config.h"

namespace whale {

class Tokenizer {
 public:
  // Loads a tokenizer.json alone: the encoding is the raw Rust library's (its own post-processor).
  static Tokenizer FromFile(const std::string& tokenizer_json_path);
  // Loads DIR/tokenizer.json plus, when present, DIR/tokenizer_config.json (and
  // chat_template.jinja): special-token strings, chat templates, and transformers' BOS/EOS rule —
  // when the config states add_bos_token or add_eos_token, the post-processor becomes `[bos] $A
  // [eos]` with those flags.
  static Tokenizer FromModelDir(const std::string& dir);
  // Parses tokenizer.json text; `source` names it in errors.
  static Tokenizer FromJsonText(std::string_view json_text, const std::string& source,
                                TokenizerConfig config = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = true) const;
  // Unknown ids are skipped (as Hugging Face does); with skip_special_tokens, tokens whose string
  // is a special added token are dropped. Invalid byte sequences become U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One past the largest id of the vocabulary or the added tokens (the embedding rows the ids can
  // address; a checkpoint's config vocab_size may be padded beyond it).
  int32_t vocab_size() const;
  // The id of a token string (an added token's content or a vocabulary entry), if any.
  std::optional<int32_t> TokenId(std::string_view token) const;
  // The string of an id (an added token's content or a vocabulary entry), if any.
  std::optional<std::string> TokenString(int32_t id) const;
  bool IsSpecialToken(int32_t id) const;

  // From tokenizer_config.json (FromModelDir only; empty otherwise).
  const TokenizerConfig& config() const;
  std::optional<std::string> bos_token() const { return config().SpecialToken("bos_token"); }
  std::optional<std::string> eos_token() const { return config().SpecialToken("eos_token"); }
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  // True when the decoder is ByteLevel alone, so each token decodes to bytes on its own.
  bool has_byte_level_decoder() const;
  // Appends the bytes token `id` decodes to under a ByteLevel decoder (nothing for unknown ids or,
  // with skip_special_tokens, special tokens). Requires has_byte_level_decoder().
  void AppendTokenBytes(int32_t id, bool skip_special_tokens, std::string& out) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// StreamDecoder: turns ids into text one id at a time for streaming output, emitting only complete
// UTF-8 characters: an id that ends inside a multi-byte character yields nothing until the ids that
// complete it arrive. With a ByteLevel decoder (DeepSeek, Qwen, Llama-3) the concatenation of
// everything Next() and Finish() return equals Decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  // The text that became complete with `id` (possibly empty).
  std::string Next(int32_t id);
  // Whatever is still pending (an incomplete character becomes U+FFFD), then resets.
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  // ByteLevel path: bytes not emitted yet (at most an incomplete character).
  std::string pending_bytes_;
  // Generic path (any decoder): Hugging Face's DecodeStream scheme — decode the ids of the last
  // emitted chunk (context for decoders that treat the first token specially) plus the new ones,
  // and emit what extends the context's text once it does not end in U+FFFD. Exact for
  // ByteLevel-like decoders; best effort where a decoder merges across tokens (ByteFallback runs).
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace whale
