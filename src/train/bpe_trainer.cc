#include "train/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "io/mapped_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/progress.h"

namespace whale {
namespace {

constexpr int32_t kByteTokens = 256;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t PairLeft(uint64_t key) {
  return static_cast<int32_t>(key >> 32);
}
int32_t PairRight(uint64_t key) {
  return static_cast<int32_t>(key & 0xffffffffu);
}

// The order in which pairs are merged: more frequent first, then the smaller (left, right).
bool Better(int64_t count_a, uint64_t key_a, int64_t count_b, uint64_t key_b) {
  if (count_a != count_b) return count_a > count_b;
  return key_a < key_b;
}

void ValidateOptions(const BpeTrainerOptions& options) {
  int64_t minimum = static_cast<int64_t>(options.special_tokens.size()) + kByteTokens;
  if (options.vocab_size < minimum) {
    Fail("BPE trainer: vocab size ", options.vocab_size, " is too small: expected at least ",
         minimum, " (", options.special_tokens.size(), " special tokens + 256 bytes)");
  }
  std::unordered_set<std::string> seen;
  for (const auto& special : options.special_tokens) {
    if (special.empty()) Fail("BPE trainer: a special token is empty");
    if (utf8::FindInvalid(special) != utf8::kValid) {
      Fail("BPE trainer: special token \"", special, "\" is not valid UTF-8");
    }
    if (!seen.insert(special).second) {
      Fail("BPE trainer: special token \"", special, "\" is given twice");
    }
  }
}

// The state both algorithms share: the vocabulary so far and the words as symbol ids.
struct Vocab {
  BpeVocabulary result;
  std::unordered_map<std::string, int32_t> ids;  // byte string -> id (not the special tokens)
  std::unordered_set<std::string> specials;

  explicit Vocab(const BpeTrainerOptions& options) {
    for (const auto& special : options.special_tokens) {
      result.tokens.push_back(special);
      specials.insert(special);
    }
    result.n_special = static_cast<int32_t>(result.tokens.size());
    for (int b = 0; b < kByteTokens; ++b) {
      std::string token(1, static_cast<char>(b));
      ids.emplace(token, static_cast<int32_t>(result.tokens.size()));
      result.tokens.push_back(token);
    }
  }
  int32_t ByteId(uint8_t b) const { return result.n_special + b; }
  // A merge whose token would equal a special token's content is never made: Hugging Face would
  // give the special token that vocabulary id.
  bool Forbidden(uint64_t key) const {
    return specials.count(result.tokens[PairLeft(key)] + result.tokens[PairRight(key)]) != 0;
  }
  // Records the merge and returns the id of the merged token (an existing one if another merge
  // already produced the same bytes).
  int32_t Merge(uint64_t key) {
    std::string merged = result.tokens[PairLeft(key)] + result.tokens[PairRight(key)];
    result.merges.emplace_back(PairLeft(key), PairRight(key));
    auto [it, inserted] = ids.emplace(merged, static_cast<int32_t>(result.tokens.size()));
    if (inserted) result.tokens.push_back(std::move(merged));
    return it->second;
  }
  bool Full(const BpeTrainerOptions& options) const {
    return static_cast<int64_t>(result.tokens.size()) >= options.vocab_size;
  }
};

std::vector<std::vector<int32_t>> InitialSymbols(const WordCounts& words, const Vocab& vocab) {
  std::vector<std::vector<int32_t>> symbols(words.size());
  for (size_t w = 0; w < words.size(); ++w) {
    for (char c : words[w].first) symbols[w].push_back(vocab.ByteId(static_cast<uint8_t>(c)));
  }
  return symbols;
}

// Replaces every non-overlapping occurrence of (left, right), scanning left to right.
bool MergeWord(std::vector<int32_t>& word, int32_t left, int32_t right, int32_t merged) {
  size_t out = 0;
  bool changed = false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
      word[out++] = merged;
      ++i;
      changed = true;
    } else {
      word[out++] = word[i];
    }
  }
  word.resize(out);
  return changed;
}

struct HeapEntry {
  int64_t count;
  uint64_t key;
};
struct HeapOrder {
  // std::priority_queue pops the largest: "largest" = best.
  bool operator()(const HeapEntry& a, const HeapEntry& b) const {
    return Better(b.count, b.key, a.count, a.key);
  }
};

}  // namespace

BpeVocabulary LearnBpe(const WordCounts& words, const BpeTrainerOptions& options) {
  ValidateOptions(options);
  Vocab vocab(options);
  std::vector<std::vector<int32_t>> symbols = InitialSymbols(words, vocab);

  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that may hold it
  for (size_t w = 0; w < symbols.size(); ++w) {
    const auto& word = symbols[w];
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      uint64_t key = PairKey(word[i], word[i + 1]);
      counts[key] += words[w].second;
      auto& list = where[key];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) {
        list.push_back(static_cast<int32_t>(w));
      }
    }
  }
  // Every pair with a positive count has an entry whose count is at least the current one; an
  // entry whose count is stale is corrected when it reaches the top.
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap;
  for (const auto& [key, count] : counts) heap.push({count, key});

  std::unique_ptr<ProgressLine> progress;
  if (options.show_progress) {
    progress = std::make_unique<ProgressLine>("merges", options.vocab_size, "tokens");
  }
  std::vector<uint64_t> grown;  // pairs containing the new token (their counts only grow)
  while (!vocab.Full(options) && !heap.empty()) {
    HeapEntry top = heap.top();
    heap.pop();
    auto found = counts.find(top.key);
    if (found == counts.end() || found->second <= 0) continue;
    if (found->second != top.count) {
      heap.push({found->second, top.key});
      continue;
    }
    if (top.count < options.min_frequency) break;
    if (vocab.Forbidden(top.key)) continue;

    int32_t left = PairLeft(top.key), right = PairRight(top.key);
    int32_t merged = vocab.Merge(top.key);
    std::vector<int32_t> affected = std::move(where[top.key]);
    where.erase(top.key);
    counts.erase(top.key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    grown.clear();
    for (int32_t w : affected) {
      auto& word = symbols[w];
      int64_t n = words[w].second;
      bool holds = false;
      for (size_t i = 0; i + 1 < word.size() && !holds; ++i) {
        holds = word[i] == left && word[i + 1] == right;
      }
      if (!holds) continue;  // an earlier merge already took the pair out of this word
      // Take out the word's pairs, merge, put them back: words are short, and this cannot get
      // overlapping occurrences (a a a) wrong.
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        uint64_t key = PairKey(word[i], word[i + 1]);
        if (key == top.key) continue;
        auto it = counts.find(key);
        if ((it->second -= n) == 0) counts.erase(it);
      }
      MergeWord(word, left, right, merged);
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        uint64_t key = PairKey(word[i], word[i + 1]);
        counts[key] += n;
        if (word[i] == merged || word[i + 1] == merged) {
          auto& list = where[key];
          if (list.empty() || list.back() != w) list.push_back(w);
          grown.push_back(key);
        }
      }
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t key : grown) {
      auto it = counts.find(key);
      if (it != counts.end()) heap.push({it->second, key});
    }
    if (progress) progress->Update(static_cast<double>(vocab.result.tokens.size()));
  }
  if (progress) progress->Finish();
  return std::move(vocab.result);
}

BpeVocabulary LearnBpeReference(const WordCounts& words, const BpeTrainerOptions& options) {
  ValidateOptions(options);
  Vocab vocab(options);
  std::vector<std::vector<int32_t>> symbols = InitialSymbols(words, vocab);
  while (!vocab.Full(options)) {
    std::map<uint64_t, int64_t> counts;
    for (size_t w = 0; w < symbols.size(); ++w) {
      for (size_t i = 0; i + 1 < symbols[w].size(); ++i) {
        counts[PairKey(symbols[w][i], symbols[w][i + 1])] += words[w].second;
      }
    }
    bool have_best = false;
    uint64_t best_key = 0;
    int64_t best_count = 0;
    for (const auto& [key, count] : counts) {
      if (vocab.Forbidden(key)) continue;
      if (!have_best || Better(count, key, best_count, best_key)) {
        have_best = true;
        best_key = key;
        best_count = count;
      }
    }
    if (!have_best || best_count < options.min_frequency) break;
    int32_t merged = vocab.Merge(best_key);
    for (auto& word : symbols) MergeWord(word, PairLeft(best_key), PairRight(best_key), merged);
  }
  return std::move(vocab.result);
}

nlohmann::ordered_json BpePreTokenizerJson(bool split_digits) {
  using Json = nlohmann::ordered_json;
  auto split = [](const char* regex) {
    return Json{{"type", "Split"},
                {"pattern", {{"Regex", regex}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  };
  // Numbers first (one digit per token, or runs of up to three), then contractions, words with an
  // optional leading space, punctuation runs with an optional leading space, and whitespace
  // (a run before a word leaves its last space to the word).
  Json steps = Json::array();
  steps.push_back(split(split_digits ? "\\p{N}" : "\\p{N}{1,3}"));
  steps.push_back(split(
      "'(?:s|t|re|ve|m|ll|d)| ?\\p{L}[\\p{L}\\p{M}]*| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"));
  steps.push_back(Json{{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", true},
                       {"use_regex", false}});
  return Json{{"type", "Sequence"}, {"pretokenizers", steps}};
}

nlohmann::ordered_json BpeTokenizerJson(const BpeVocabulary& vocabulary, bool split_digits) {
  using Json = nlohmann::ordered_json;
  auto mapped = [&](int32_t id) {
    if (id < vocabulary.n_special) return vocabulary.tokens[id];
    std::string text;
    byte_level::AppendMapped(text, vocabulary.tokens[id]);
    return text;
  };
  Json added = Json::array();
  for (int32_t id = 0; id < vocabulary.n_special; ++id) {
    added.push_back(Json{{"id", id},
                         {"content", vocabulary.tokens[id]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
  }
  Json vocab = Json::object();
  for (int32_t id = 0; id < static_cast<int32_t>(vocabulary.tokens.size()); ++id) {
    vocab[mapped(id)] = id;
  }
  // Byte-level strings never contain a space (it maps to U+0120), so "left right" is unambiguous.
  Json merges = Json::array();
  for (const auto& [left, right] : vocabulary.merges) {
    merges.push_back(mapped(left) + " " + mapped(right));
  }
  Json model{{"type", "BPE"},
             {"dropout", nullptr},
             {"unk_token", nullptr},
             {"continuing_subword_prefix", nullptr},
             {"end_of_word_suffix", nullptr},
             {"fuse_unk", false},
             {"byte_fallback", false},
             {"ignore_merges", false},
             {"vocab", vocab},
             {"merges", merges}};
  return Json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", BpePreTokenizerJson(split_digits)},
              {"post_processor", nullptr},
              {"decoder",
               {{"type", "ByteLevel"},
                {"add_prefix_space", true},
                {"trim_offsets", true},
                {"use_regex", true}}},
              {"model", model}};
}

struct BpeTrainer::Impl {
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unordered_map<std::string, int64_t> counts;
  PieceArena arena;
  std::vector<Piece> pieces;

  void CountGap(std::string_view gap) {
    if (gap.empty()) return;
    pieces.assign(1, Piece{gap, false, false});
    pre_tokenizer->Apply(pieces, arena);
    for (const Piece& piece : pieces) {
      // ByteLevel runs last, so pieces are raw bytes (or already mapped text if it chose to map).
      if (piece.raw_bytes) {
        ++counts[std::string(piece.text)];
      } else {
        std::string bytes;
        WHALE_ASSERT(byte_level::AppendUnmapped(bytes, piece.text), "piece ", piece.text);
        ++counts[bytes];
      }
    }
    arena.Clear();
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  ValidateOptions(options_);
  impl_->pre_tokenizer = PreTokenizer::FromJson(
      nlohmann::json::parse(BpePreTokenizerJson(options_.split_digits).dump()), "BPE trainer");
}
BpeTrainer::~BpeTrainer() = default;
BpeTrainer::BpeTrainer(BpeTrainer&&) noexcept = default;

void BpeTrainer::AddText(std::string_view text, const std::string& source) {
  size_t bad = utf8::FindInvalid(text);
  if (bad != utf8::kValid) {
    Fail(source, ": invalid UTF-8 at byte offset ", bad, ": expected UTF-8 text");
  }
  // Special tokens are cut out (leftmost, then longest match), as the tokenizer will cut them out
  // before pre-tokenizing, so no merge is learned across or inside them.
  const auto& specials = options_.special_tokens;
  std::vector<size_t> next_at;  // the next occurrence of each at or after pos
  for (const auto& special : specials) next_at.push_back(text.find(special));
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best_at = std::string_view::npos, best_len = 0;
    for (size_t s = 0; s < specials.size(); ++s) {
      if (next_at[s] != std::string_view::npos && next_at[s] < pos) {
        next_at[s] = text.find(specials[s], pos);
      }
      size_t at = next_at[s];
      if (at == std::string_view::npos) continue;
      if (at < best_at || (at == best_at && specials[s].size() > best_len)) {
        best_at = at;
        best_len = specials[s].size();
      }
    }
    if (best_at == std::string_view::npos) {
      impl_->CountGap(text.substr(pos));
      break;
    }
    impl_->CountGap(text.substr(pos, best_at - pos));
    pos = best_at + best_len;
  }
}

void BpeTrainer::AddFile(const std::string& path) {
  AddText(ReadTextFile(path), path);
}

WordCounts BpeTrainer::Words() const {
  WordCounts words(impl_->counts.begin(), impl_->counts.end());
  std::sort(words.begin(), words.end());
  return words;
}

BpeVocabulary BpeTrainer::Train() const {
  return LearnBpe(Words(), options_);
}

nlohmann::ordered_json BpeTrainer::TrainTokenizerJson() const {
  return BpeTokenizerJson(Train(), options_.split_digits);
}

}  // namespace whale
