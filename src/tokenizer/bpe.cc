#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

using json_fields::Json;

// Open addressing over (left id, right id) -> merge, linear probing. Lookups dominate encoding time
// for words that miss the cache, so this avoids std::unordered_map's node chasing.
class BpeModel::MergeTable {
 public:
  explicit MergeTable(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    keys_.assign(capacity, kEmpty);
    values_.resize(capacity);
    mask_ = capacity - 1;
  }
  // Later inserts of the same pair overwrite earlier ones (Hugging Face's HashMap::insert).
  void Insert(int32_t left, int32_t right, Merge merge) {
    uint64_t key = Key(left, right);
    size_t slot = Slot(key);
    while (keys_[slot] != kEmpty && keys_[slot] != key) slot = (slot + 1) & mask_;
    keys_[slot] = key;
    values_[slot] = merge;
  }
  const Merge* Find(int32_t left, int32_t right) const {
    uint64_t key = Key(left, right);
    size_t slot = Slot(key);
    while (true) {
      if (keys_[slot] == key) return &values_[slot];
      if (keys_[slot] == kEmpty) return nullptr;
      slot = (slot + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t Slot(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  }
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0;
};

// Word -> ids cache, shared by all threads. A thread that finds the lock taken simply skips the
// cache, so concurrent encoders never wait on each other. Like Hugging Face's cache it stops
// growing when full (output never depends on it).
class BpeModel::WordCache {
 public:
  static constexpr size_t kCapacity = 1 << 17;
  static constexpr size_t kMaxWordBytes = 256;

  bool Lookup(std::string_view key, std::vector<int32_t>& out) {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void Insert(std::string_view key, const int32_t* ids, size_t count) {
    if (key.size() >= kMaxWordBytes) return;
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || map_.size() >= kCapacity) return;
    map_.try_emplace(std::string(key), ids, ids + count);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map_;
};

BpeModel::BpeModel(const Json& model, const std::string& where)
    : cache_(std::make_unique<WordCache>()) {
  namespace jf = json_fields;
  std::string type = jf::StringOr(model, "type", "BPE", where);
  if (type != "BPE") {
    Fail(where, ".type: unsupported model type '", type, "' (whale supports BPE models only)");
  }
  // dropout only randomizes training-time segmentation; inference uses the deterministic merges,
  // as every inference engine does.
  if (jf::Has(model, "unk_token")) unk_token_ = jf::String(model, "unk_token", where);
  continuing_subword_prefix_ = jf::StringOr(model, "continuing_subword_prefix", "", where);
  end_of_word_suffix_ = jf::StringOr(model, "end_of_word_suffix", "", where);
  fuse_unk_ = jf::BoolOr(model, "fuse_unk", false, where);
  byte_fallback_ = jf::BoolOr(model, "byte_fallback", false, where);
  ignore_merges_ = jf::BoolOr(model, "ignore_merges", false, where);

  const Json& vocab = jf::Require(model, "vocab", where);
  if (!vocab.is_object()) jf::WrongType(where + ".vocab", vocab, "an object of token -> id");
  token_to_id_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = jf::TokenIdValue(it.value(), Cat(where, ".vocab[\"", it.key(), "\"]"));
    token_to_id_.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id) + 1);
  id_present_.assign(static_cast<size_t>(max_id) + 1, false);
  for (const auto& [token, id] : token_to_id_) {
    if (!id_present_[id]) {
      id_to_token_[id] = token;
      id_present_[id] = true;
    }
  }

  const Json& merges = jf::Require(model, "merges", where);
  if (!merges.is_array()) jf::WrongType(where + ".merges", merges, "an array");
  merges_ = std::make_unique<MergeTable>(merges.size());
  int32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    std::string entry_where = Cat(where, ".merges[", i, "]");
    std::string left, right;
    if (entry.is_string()) {
      const std::string& line = entry.get_ref<const std::string&>();
      if (line.starts_with("#version")) continue;
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        Fail(entry_where, ": merge \"", line, "\" must be two tokens separated by one space");
      }
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      jf::WrongType(entry_where, entry, "a merge \"A B\" or [\"A\", \"B\"]");
    }
    auto left_id = TokenToId(left);
    auto right_id = TokenToId(right);
    if (!left_id) Fail(entry_where, ": merge token \"", left, "\" is not in the vocabulary");
    if (!right_id) Fail(entry_where, ": merge token \"", right, "\" is not in the vocabulary");
    std::string merged = left;
    size_t strip = std::min(continuing_subword_prefix_.size(), right.size());
    merged.append(right, strip);
    auto merged_id = TokenToId(merged);
    if (!merged_id) {
      Fail(entry_where, ": merged token \"", merged, "\" is not in the vocabulary");
    }
    merges_->Insert(*left_id, *right_id, Merge{rank, *merged_id});
    ++rank;
  }

  for (int b = 0; b < 256; ++b) {
    auto id = TokenToId(byte_level::ByteToUtf8(static_cast<uint8_t>(b)));
    byte_symbol_[b] = id ? *id : -1;
  }
}

BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_end() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::AddUnknownChar(std::string_view ch, std::vector<int32_t>& symbols,
                              int32_t& pending_unk) const {
  if (byte_fallback_) {
    // Byte fallback applies only if every byte has a <0xXX> token; it does not flush a pending unk
    // first (Hugging Face quirk, kept).
    int32_t ids[8];
    size_t n = 0;
    for (char c : ch) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(c));
      auto id = TokenToId(name);
      if (!id) {
        n = 0;
        break;
      }
      ids[n++] = *id;
    }
    if (n == ch.size() && n > 0) {
      symbols.insert(symbols.end(), ids, ids + n);
      return;
    }
  }
  if (!unk_token_) return;  // no unk token: the character is dropped, as Hugging Face does
  auto unk = TokenToId(*unk_token_);
  if (!unk) Fail("tokenizer.json model.unk_token \"", *unk_token_, "\" is not in the vocabulary");
  if (pending_unk >= 0 && fuse_unk_) return;  // extends the pending unknown run
  if (pending_unk >= 0) symbols.push_back(pending_unk);
  pending_unk = *unk;
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const {
  int32_t pending_unk = -1;
  std::string piece;
  size_t pos = 0;
  while (pos < word.size()) {
    size_t start = pos;
    utf8::Next(word, pos);
    std::string_view ch = word.substr(start, pos - start);
    std::optional<int32_t> id;
    if (continuing_subword_prefix_.empty() && end_of_word_suffix_.empty()) {
      id = TokenToId(ch);
    } else {
      piece.clear();
      if (start > 0) piece += continuing_subword_prefix_;
      piece += ch;
      if (pos == word.size()) piece += end_of_word_suffix_;
      id = TokenToId(piece);
      ch = piece;
    }
    if (id) {
      if (pending_unk >= 0) {
        symbols.push_back(pending_unk);
        pending_unk = -1;
      }
      symbols.push_back(*id);
    } else {
      AddUnknownChar(ch, symbols, pending_unk);
    }
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
}

void BpeModel::MergeSymbols(std::vector<int32_t>& symbols, std::vector<int32_t>& out) const {
  const size_t n = symbols.size();
  if (n == 1) {
    out.push_back(symbols[0]);
    return;
  }
  // Linked list over the initial positions; a merged-away symbol gets id -1.
  thread_local std::vector<int32_t> prev, next;
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Candidate> heap;
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    if (i + 1 < n) {
      if (const Merge* m = merges_->Find(symbols[i], symbols[i + 1])) {
        heap.push_back({m->rank, static_cast<int32_t>(i), m->new_id});
      }
    }
  }
  auto cmp = std::greater<Candidate>();
  std::make_heap(heap.begin(), heap.end(), cmp);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    Candidate top = heap.back();
    heap.pop_back();
    int32_t i = top.pos;
    if (symbols[i] < 0) continue;  // absorbed by an earlier merge
    int32_t j = next[i];
    if (j < 0) continue;
    const Merge* m = merges_->Find(symbols[i], symbols[j]);
    if (!m || m->new_id != top.new_id) continue;  // stale: the pair changed since it was queued
    symbols[i] = top.new_id;
    symbols[j] = -1;
    next[i] = next[j];
    if (next[i] >= 0) prev[next[i]] = i;
    if (prev[i] >= 0) {
      if (const Merge* left = merges_->Find(symbols[prev[i]], symbols[i])) {
        heap.push_back({left->rank, prev[i], left->new_id});
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
    if (next[i] >= 0) {
      if (const Merge* right = merges_->Find(symbols[i], symbols[next[i]])) {
        heap.push_back({right->rank, i, right->new_id});
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(symbols[i]);
}

void BpeModel::TokenizeUncached(std::string_view word, bool raw_bytes,
                                std::vector<int32_t>& out) const {
  thread_local std::string mapped;
  if (raw_bytes) {
    bool all_bytes_known = true;
    for (char c : word) all_bytes_known &= byte_symbol_[static_cast<uint8_t>(c)] >= 0;
    if (!ignore_merges_ && all_bytes_known && continuing_subword_prefix_.empty() &&
        end_of_word_suffix_.empty()) {
      thread_local std::vector<int32_t> symbols;
      symbols.clear();
      for (char c : word) symbols.push_back(byte_symbol_[static_cast<uint8_t>(c)]);
      MergeSymbols(symbols, out);
      return;
    }
    // Rare configurations: build the byte-level string and take the general path.
    mapped.clear();
    byte_level::AppendMapped(mapped, word);
    word = mapped;
  }
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<int32_t> symbols;
  InitialSymbols(word, symbols);
  if (symbols.empty()) return;
  MergeSymbols(symbols, out);
}

void BpeModel::Tokenize(std::string_view word, bool raw_bytes, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (raw_bytes && word.size() == 1) {
    // One byte: its character token is also the whole-word token, so ignore_merges agrees.
    int32_t id = byte_symbol_[static_cast<uint8_t>(word[0])];
    if (id >= 0 && continuing_subword_prefix_.empty() && end_of_word_suffix_.empty()) {
      out.push_back(id);
      return;
    }
  }
  // Raw-byte and mapped words live in one cache: the marker byte keeps their keys apart.
  thread_local std::string key;
  key.assign(1, raw_bytes ? '\x01' : '\x00');
  key.append(word);
  if (cache_->Lookup(key, out)) return;
  size_t start = out.size();
  TokenizeUncached(word, raw_bytes, out);
  cache_->Insert(key, out.data() + start, out.size() - start);
}

}  // namespace whale
