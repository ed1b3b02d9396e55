// Decoder: tokenizer.json's "decoder", which turns token strings back into text.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace whale {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Hugging Face's decode_chain: transforms the list of token strings (the final text is their
  // concatenation).
  virtual void DecodeChain(std::vector<std::string>& tokens) const = 0;
  // True for the ByteLevel decoder alone: each token then decodes to bytes independently of its
  // neighbours, which lets StreamDecoder work token by token.
  virtual bool IsByteLevel() const { return false; }

  // nullptr for JSON null. Unknown types are an error naming the type and `where`.
  static std::unique_ptr<Decoder> FromJson(const nlohmann::json& config, const std::string& where);
};

// ByteLevel decoding of one token: its bytes if every character is in the byte-level table,
// otherwise its own UTF-8 bytes.
void AppendByteLevelTokenBytes(std::string& out, const std::string& token);

}  // namespace whale
