#include "tokenizer/normalizer.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void Normalize(std::string& text) const override {
    for (const auto& step : steps_) step->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  void Normalize(std::string& text) const override { text = unicode::Normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override { text = unicode::HfLowercase(text); }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Normalize(std::string& text) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    pattern_.FindAll(text, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(text.size());
    size_t last = 0;
    for (auto [begin, end] : matches) {
      out.append(text, last, begin - last);
      out += content_;
      last = end;
    }
    out.append(text, last, std::string::npos);
    text = std::move(out);
  }

 private:
  Regex pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string& text) const override {
    std::u32string chars = utf8::ToUtf32(text);
    size_t begin = 0, end = chars.size();
    if (left_) {
      while (begin < end && unicode::IsWhiteSpace(chars[begin])) ++begin;
    }
    if (right_) {
      while (end > begin && unicode::IsWhiteSpace(chars[end - 1])) --end;
    }
    if (begin != 0 || end != chars.size()) {
      text = utf8::FromUtf32(std::u32string_view(chars).substr(begin, end - begin));
    }
  }

 private:
  bool left_, right_;
};

// Removes combining marks (general category M; meant to follow NFD).
class StripAccentsNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start = pos;
      char32_t cp = utf8::Next(text, pos);
      if (!unicode::IsMark(cp)) out.append(text, start, pos - start);
    }
    text = std::move(out);
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override {
    std::string out;
    byte_level::AppendMapped(out, text);
    text = std::move(out);
  }
};

}  // namespace

std::unique_ptr<Normalizer> Normalizer::FromJson(const Json& config, const std::string& where) {
  jf::NestingGuard guard(where);
  if (config.is_null()) return nullptr;
  std::string type = jf::String(config, "type", where);
  if (type == "Sequence") {
    const Json& list = jf::Require(config, "normalizers", where);
    if (!list.is_array()) jf::WrongType(where + ".normalizers", list, "an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = FromJson(list[i], Cat(where, ".normalizers[", i, "]"));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(jf::String(config, "prepend", where));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(
        ParsePattern(jf::Require(config, "pattern", where), where + ".pattern"),
        jf::String(config, "content", where));
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(jf::BoolOr(config, "strip_left", true, where),
                                             jf::BoolOr(config, "strip_right", true, where));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  Fail(where, ".type: unsupported normalizer type '", type,
       "' (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, "
       "StripAccents, ByteLevel)");
}

}  // namespace whale
