#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tokenizer/bpe.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

// The Rust regex crate's Unicode \w (see pre_tokenizer.cc), for single_word.
bool IsWordChar(std::string_view ch) {
  static const Regex word(
      "[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\x{24B6}-\\x{24E9}\\x{1F130}-\\x{1F149}"
      "\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}]",
      "single_word");
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  word.FindAll(ch, matches);
  return !matches.empty();
}

// Byte offset where the run of whitespace at the end of `text` starts.
size_t TrailingWhitespaceStart(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!unicode::IsWhiteSpace(utf8::Next(text, pos))) break;
    end = start;
  }
  return end;
}

size_t LeadingWhitespaceLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = pos;
    if (!unicode::IsWhiteSpace(utf8::Next(text, next))) break;
    pos = next;
  }
  return pos;
}

std::string_view LastChar(std::string_view text) {
  size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return text.substr(start);
}

std::string_view FirstChar(std::string_view text) {
  return text.substr(0, utf8::SequenceLength(static_cast<uint8_t>(text[0])));
}

}  // namespace

void AddedVocabulary::Matcher::Add(std::string_view pattern, int32_t token_index) {
  if (node_token.empty()) node_token.push_back(-1);  // the root
  int32_t node = 0;
  for (char c : pattern) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    auto it = edges.find(key);
    if (it == edges.end()) {
      int32_t child = static_cast<int32_t>(node_token.size());
      node_token.push_back(-1);
      it = edges.emplace(key, child).first;
    }
    node = it->second;
  }
  node_token[node] = token_index;
  first_byte[static_cast<uint8_t>(pattern[0])] = true;
}

std::pair<size_t, int32_t> AddedVocabulary::Matcher::Longest(std::string_view text,
                                                             size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (node_token[node] >= 0) best = {i + 1 - pos, node_token[node]};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(const Json& added_tokens, const BpeModel& model,
                                 const Normalizer* normalizer, const std::string& where) {
  id_end_ = model.id_end();
  if (added_tokens.is_null()) return;
  if (!added_tokens.is_array()) jf::WrongType(where, added_tokens, "an array");
  int32_t max_added_id = -1;
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    std::string token_where = Cat(where, "[", i, "]");
    const Json& entry = added_tokens[i];
    AddedToken token;
    token.content = jf::String(entry, "content", token_where);
    token.special = jf::BoolOr(entry, "special", false, token_where);
    token.single_word = jf::BoolOr(entry, "single_word", false, token_where);
    token.lstrip = jf::BoolOr(entry, "lstrip", false, token_where);
    token.rstrip = jf::BoolOr(entry, "rstrip", false, token_where);
    token.normalized = jf::BoolOr(entry, "normalized", !token.special, token_where);
    if (token.content.empty()) continue;  // Hugging Face ignores empty tokens
    if (auto it = content_to_index_.find(token.content); it != content_to_index_.end()) {
      token.id = tokens_[it->second].id;
      tokens_[it->second] = token;  // re-added: same id, the new flags win
    } else {
      if (auto id = model.TokenToId(token.content)) {
        token.id = *id;
      } else if (max_added_id >= model.vocab_entries() || model.vocab_entries() == 0) {
        token.id = max_added_id + 1;
      } else {
        token.id = model.vocab_entries();
      }
      content_to_index_.emplace(token.content, static_cast<int32_t>(tokens_.size()));
      tokens_.push_back(token);
    }
    max_added_id = std::max(max_added_id, token.id);
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    std::string pattern = token.content;
    if (token.normalized && normalizer) normalizer->Normalize(pattern);
    if (token.special) special_.insert(token.content);
    // Since tokenizers 0.23 a normalized token decodes to its normalized form.
    id_to_string_[token.id] = token.normalized ? pattern : token.content;
    id_end_ = std::max(id_end_, token.id + 1);
    if (pattern.empty()) continue;
    (token.normalized ? normalized_matcher_ : raw_matcher_).Add(pattern, static_cast<int32_t>(i));
  }
}

void AddedVocabulary::Split(std::string_view text, bool normalized_pass,
                            std::vector<Segment>& out) const {
  out.clear();
  const Matcher& matcher = normalized_pass ? normalized_matcher_ : raw_matcher_;
  size_t previous_end = 0;
  if (!matcher.node_token.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!matcher.first_byte[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      auto [length, index] = matcher.Longest(text, pos);
      if (length == 0) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + length;
      pos = stop;  // a rejected match is not retried at an inner position
      const AddedToken& token = tokens_[index];
      if (token.single_word) {
        bool left_ok = start == 0 || !IsWordChar(LastChar(text.substr(0, start)));
        bool right_ok = stop == text.size() || !IsWordChar(FirstChar(text.substr(stop)));
        if (!left_ok || !right_ok) continue;
      }
      if (token.lstrip)
        start = std::max(TrailingWhitespaceStart(text.substr(0, start)), previous_end);
      if (token.rstrip) stop += LeadingWhitespaceLength(text.substr(stop));
      if (previous_end < start) out.push_back({previous_end, start, -1});
      out.push_back({start, stop, token.id});
      previous_end = stop;
    }
  }
  if (previous_end < text.size()) out.push_back({previous_end, text.size(), -1});
}

std::optional<int32_t> AddedVocabulary::TokenToId(std::string_view content) const {
  auto it = content_to_index_.find(std::string(content));
  if (it == content_to_index_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

const std::string* AddedVocabulary::IdToString(int32_t id) const {
  auto it = id_to_string_.find(id);
  return it == id_to_string_.end() ? nullptr : &it->second;
}

}  // namespace whale
