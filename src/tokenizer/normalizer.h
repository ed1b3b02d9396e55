// Normalizer: tokenizer.json's "normalizer", applied to each piece of text between added tokens.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace whale {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place.
  virtual void Normalize(std::string& text) const = 0;

  // Builds the normalizer described by `config`; returns nullptr for JSON null. Unknown types are
  // an error naming the type and `where`.
  static std::unique_ptr<Normalizer> FromJson(const nlohmann::json& config,
                                              const std::string& where);
};

}  // namespace whale
