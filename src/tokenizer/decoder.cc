#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) AppendByteLevelTokenBytes(bytes, token);
    tokens.assign(1, utf8::DecodeLossy(bytes));
  }
  bool IsByteLevel() const override { return true; }
};

// <0xXX> tokens become bytes; a run of them is emitted as one string when it is valid UTF-8,
// otherwise as one U+FFFD per byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (utf8::FindInvalid(pending) == utf8::kValid) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i)
          out.push_back(utf8::Encode(utf8::kReplacementChar));
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& token : tokens) {
      int byte = ParseByteToken(token);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        ++pending_count;
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Rust's u8::from_str_radix(.., 16) on the two characters, which also accepts a leading '+'.
  static int ParseByteToken(const std::string& token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int hi = token[3] == '+' ? 0 : HexDigit(token[3]);
    int lo = HexDigit(token[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.clear();
    tokens.push_back(std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      size_t begin = 0;
      for (size_t i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0 &&
                         begin + content_.size() <= token.size();
           ++i) {
        begin += content_.size();
      }
      size_t end = token.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    for (std::string& token : tokens) {
      pattern_.FindAll(token, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t last = 0;
      for (auto [begin, end] : matches) {
        out.append(token, last, begin - last);
        out += content_;
        last = end;
      }
      out.append(token, last, std::string::npos);
      token = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

// The replacement character becomes a space, except in the first token where it is dropped
// (unless prepend_scheme is "never").
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      size_t pos = 0;
      while (pos < token.size()) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          pos += replacement_.size();
        } else {
          out += token[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

// BPEDecoder: the end-of-word suffix becomes a space, except in the last token where it is dropped.
class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string replacement = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      const std::string& token = tokens[i];
      size_t pos = 0;
      while (true) {
        size_t found = suffix_.empty() ? std::string::npos : token.find(suffix_, pos);
        if (found == std::string::npos) break;
        out.append(token, pos, found - pos);
        out += replacement;
        pos = found + suffix_.size();
      }
      out.append(token, pos, std::string::npos);
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->DecodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

void AppendByteLevelTokenBytes(std::string& out, const std::string& token) {
  if (!byte_level::AppendUnmapped(out, token)) out += token;
}

std::unique_ptr<Decoder> Decoder::FromJson(const Json& config, const std::string& where) {
  jf::NestingGuard guard(where);
  if (config.is_null()) return nullptr;
  std::string type = jf::String(config, "type", where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    int64_t start = jf::IntOr(config, "start", 0, where);
    int64_t stop = jf::IntOr(config, "stop", 0, where);
    if (start < 0 || stop < 0) Fail(where, ": start/stop must not be negative");
    std::string content = jf::String(config, "content", where);
    if (content.empty() || utf8::FindInvalid(content) != utf8::kValid ||
        utf8::ValidSequenceLength(content, 0) != content.size()) {
      Fail(where, ".content: expected exactly one character, found \"", content, "\"");
    }
    return std::make_unique<StripDecoder>(content, static_cast<size_t>(start),
                                          static_cast<size_t>(stop));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(
        ParsePattern(jf::Require(config, "pattern", where), where + ".pattern"),
        jf::String(config, "content", where));
  }
  if (type == "Metaspace") {
    std::string replacement = jf::StringOr(config, "replacement", "\xE2\x96\x81", where);
    std::string scheme = jf::StringOr(config, "prepend_scheme", "always", where);
    bool add_prefix_space = jf::BoolOr(config, "add_prefix_space", true, where);
    bool strip_first = scheme != "never" && add_prefix_space;
    return std::make_unique<MetaspaceDecoder>(replacement, strip_first);
  }
  if (type == "BPEDecoder") {
    return std::make_unique<BpeSuffixDecoder>(jf::StringOr(config, "suffix", "</w>", where));
  }
  if (type == "Sequence") {
    const Json& list = jf::Require(config, "decoders", where);
    if (!list.is_array()) jf::WrongType(where + ".decoders", list, "an array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = FromJson(list[i], Cat(where, ".decoders[", i, "]"));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  Fail(where, ".type: unsupported decoder type '", type,
       "' (supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, BPEDecoder, "
       "Sequence)");
}

}  // namespace whale
