// PreTokenizer: tokenizer.json's "pre_tokenizer", which cuts each normalized piece of text into the
// words the model sees. Every step applies to every piece separately; empty pieces are dropped.
#pragma once

#include <deque>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace whale {

// A piece of text on its way to the model. Pieces view strings owned by the caller or by a
// PieceArena.
struct Piece {
  std::string_view text;
  // The text holds raw bytes, each standing for its byte-level character (a ByteLevel step ran
  // last; the mapping is applied lazily by the model).
  bool raw_bytes = false;
  // The piece starts at offset 0 of the original input (Metaspace's prepend_scheme "first").
  bool at_start = false;
};

// Owns the strings that transforming steps create; string_views into it stay valid until Clear().
class PieceArena {
 public:
  std::string_view Store(std::string text) { return strings_.emplace_back(std::move(text)); }
  void Clear() { strings_.clear(); }

 private:
  std::deque<std::string> strings_;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokenization, in order.
  virtual void Apply(std::vector<Piece>& pieces, PieceArena& arena) const = 0;

  // Builds the pre-tokenizer described by `config`; nullptr for JSON null. Unknown types are an
  // error naming the type and `where`.
  static std::unique_ptr<PreTokenizer> FromJson(const nlohmann::json& config,
                                                const std::string& where);
};

}  // namespace whale
