// BpeModel: the "BPE" model of a Hugging Face tokenizer.json — vocabulary, ranked merges and the
// merge loop that always applies the lowest-ranked adjacent pair, leftmost first (HF's word.rs).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace whale {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object; `where` names it in errors.
  BpeModel(const nlohmann::json& model, const std::string& where);
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // Number of vocabulary entries (Hugging Face's vocab_size(), also where new added-token ids
  // start).
  int32_t vocab_entries() const { return static_cast<int32_t>(token_to_id_.size()); }
  // One past the largest id in the vocabulary.
  int32_t id_end() const { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr for ids that are not in the vocabulary.
  const std::string* IdToToken(int32_t id) const;

  // Appends the ids for one pre-token. `word` is in the model's alphabet, except when `raw_bytes`
  // is set: then every byte of `word` stands for its GPT-2 byte-level character (what the ByteLevel
  // pre-tokenizer would have produced), which saves building the mapped string.
  void Tokenize(std::string_view word, bool raw_bytes, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  class MergeTable;
  class WordCache;

  // The merge loop over initial symbols; appends the final ids.
  void MergeSymbols(std::vector<int32_t>& symbols, std::vector<int32_t>& out) const;
  // Initial symbols of a word in the model alphabet (handles prefix/suffix, unk and byte fallback).
  void InitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const;
  void TokenizeUncached(std::string_view word, bool raw_bytes, std::vector<int32_t>& out) const;
  void AddUnknownChar(std::string_view ch, std::vector<int32_t>& symbols,
                      int32_t& pending_unk) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  std::unique_ptr<MergeTable> merges_;
  std::optional<std::string> unk_token_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // Id of the byte-level character of each byte, or -1 (only for the raw-bytes path).
  int32_t byte_symbol_[256];
  std::unique_ptr<WordCache> cache_;
};

}  // namespace whale
