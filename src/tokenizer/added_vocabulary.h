// AddedVocabulary: tokenizer.json's "added_tokens" — their ids (assigned by Hugging Face's rule,
// not read from the file) and the leftmost-longest matcher that cuts them out of text before
// normalization and pre-tokenization.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace whale {

class BpeModel;
class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `added_tokens` is tokenizer.json's array. Ids: a content already known (as an added token or in
  // the model vocabulary) keeps that id; a new one gets the next id after the model vocabulary (or
  // after the largest added id if that is already past it).
  AddedVocabulary(const nlohmann::json& added_tokens, const BpeModel& model,
                  const Normalizer* normalizer, const std::string& where);

  // A piece of the input: an added token (id >= 0) or plain text (id == -1).
  struct Segment {
    size_t begin, end;
    int32_t id;
  };
  // Cuts `text` with the tokens whose `normalized` flag equals `normalized_pass`: leftmost match,
  // longest at that position, non-overlapping; single_word matches next to a word character are
  // skipped (not retried); lstrip/rstrip absorb the adjacent whitespace into the token. Empty text
  // gives no segments.
  void Split(std::string_view text, bool normalized_pass, std::vector<Segment>& out) const;

  std::optional<int32_t> TokenToId(std::string_view content) const;
  // The string an added id decodes to (its normalized form for normalized tokens), or nullptr.
  const std::string* IdToString(int32_t id) const;
  // Decoding with skip_special_tokens drops tokens whose string is one of these.
  bool IsSpecial(std::string_view token) const { return special_.count(std::string(token)) > 0; }
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  int32_t id_end() const { return id_end_; }

 private:
  // A byte trie over the match patterns of one pass.
  struct Matcher {
    std::vector<int32_t> node_token;              // token index ending at node, or -1
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child
    std::array<bool, 256> first_byte{};
    void Add(std::string_view pattern, int32_t token_index);
    // Length and token index of the longest pattern starting at text[pos], or {0, -1}.
    std::pair<size_t, int32_t> Longest(std::string_view text, size_t pos) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> content_to_index_;
  std::unordered_map<int32_t, std::string> id_to_string_;
  std::unordered_set<std::string> special_;
  Matcher raw_matcher_, normalized_matcher_;
  int32_t id_end_ = 0;
};

}  // namespace whale
