// BpeTrainer: learns a byte-level BPE vocabulary (GPT-2 / DeepSeek style) from text and writes it
// as a Hugging Face tokenizer.json that whale's Tokenizer and Hugging Face `tokenizers` load.
//
// Pipeline of the written tokenizer: no normalizer; pre-tokenizer = Sequence[Split(numbers),
// Split(words), ByteLevel(use_regex=false)]; model = BPE over the 256 byte-level characters;
// decoder = ByteLevel; no post-processor. Special tokens become added tokens (special: true) and
// vocabulary entries with the first ids, so Hugging Face's id-assignment rule reproduces them.
//
// Training counts the distinct pre-tokenized words (with exactly the pre-tokenizer written to the
// file, so training and encoding split text the same way), then repeatedly merges the most
// frequent adjacent symbol pair. Ties go to the pair with the smaller (left id, right id), which
// makes the result independent of hash-table order. Pair counts are updated incrementally: a merge
// only revisits the words that contain the pair, and a lazily corrected priority queue finds the
// next best pair.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whale {

struct BpeTrainerOptions {
  // Total vocabulary size: special tokens + 256 byte tokens + merged tokens.
  int32_t vocab_size = 0;
  // Added as special tokens with ids 0, 1, ... in this order; cut out of the training text.
  std::vector<std::string> special_tokens;
  // One token per digit (arithmetic), instead of runs of up to three digits.
  bool split_digits = false;
  // Pairs seen fewer times than this are never merged (training may then stop below vocab_size).
  int64_t min_frequency = 2;
  // Draw a progress line on stderr.
  bool show_progress = false;
};

// The learned vocabulary: tokens[id] are raw bytes (special tokens: their content); merges are
// pairs of ids in rank order.
struct BpeVocabulary {
  std::vector<std::string> tokens;
  std::vector<std::pair<int32_t, int32_t>> merges;
  int32_t n_special = 0;
};

// A word (raw bytes) and how often it occurs.
using WordCounts = std::vector<std::pair<std::string, int64_t>>;

// The pre_tokenizer object of the written tokenizer.json.
nlohmann::ordered_json BpePreTokenizerJson(bool split_digits);

class BpeTrainer {
 public:
  // Throws Error if vocab_size cannot hold the special tokens and the 256 bytes.
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();
  BpeTrainer(BpeTrainer&&) noexcept;

  // Counts the words of `text` (valid UTF-8; `source` names it in errors).
  void AddText(std::string_view text, const std::string& source);
  // Reads and counts a whole file.
  void AddFile(const std::string& path);

  // The distinct words counted so far, sorted by bytes.
  WordCounts Words() const;
  // Learns the merges from the counted words.
  BpeVocabulary Train() const;
  // Train() rendered as a tokenizer.json document.
  nlohmann::ordered_json TrainTokenizerJson() const;

  const BpeTrainerOptions& options() const { return options_; }

 private:
  struct Impl;
  BpeTrainerOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The fast incremental algorithm over explicit word counts.
BpeVocabulary LearnBpe(const WordCounts& words, const BpeTrainerOptions& options);
// The obviously correct reference: recounts every pair of every word before each merge. Same
// tie-breaking, same result; quadratic, for tests on small corpora.
BpeVocabulary LearnBpeReference(const WordCounts& words, const BpeTrainerOptions& options);

// Renders a vocabulary as a tokenizer.json document (byte-level strings, merges as "a b").
nlohmann::ordered_json BpeTokenizerJson(const BpeVocabulary& vocabulary, bool split_digits);

}  // namespace whale
