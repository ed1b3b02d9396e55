// Encode/decode against fixtures produced by Hugging Face tokenizers 0.23.2 (Rust, through its
// official Node binding) with tools/tokenizer/make_fixtures.js: ids must match exactly, decoded
// text byte for byte.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {
namespace {

using testing::Escaped;
using testing::LoadJson;
using testing::TokenizerData;

const std::vector<std::string> kTokenizers = {
    "deepseek-v3",     "qwen2-style",  "llama3-style", "sentencepiece-style",
    "metaspace-style", "suffix-style", "prefix-style", "byte-level-regex-style"};

class TokenizerFixture : public ::testing::TestWithParam<std::string> {
 protected:
  static const Tokenizer& Get(const std::string& name) {
    static std::map<std::string, Tokenizer> cache;
    auto it = cache.find(name);
    if (it == cache.end()) {
      it = cache.emplace(name, Tokenizer::FromFile(TokenizerData(name + "/tokenizer.json"))).first;
    }
    return it->second;
  }
};

std::vector<int32_t> Ids(const nlohmann::json& array) {
  return array.get<std::vector<int32_t>>();
}

TEST_P(TokenizerFixture, EncodeMatchesHuggingFace) {
  const Tokenizer& tokenizer = Get(GetParam());
  nlohmann::json cases = LoadJson(TokenizerData(GetParam() + "/encode.json"));
  ASSERT_GT(cases.size(), 200u);
  int failures = 0;
  for (const auto& c : cases) {
    std::string text = c["text"];
    std::vector<int32_t> expected = Ids(c["ids"]);
    std::vector<int32_t> expected_plain = c.contains("ids_plain") ? Ids(c["ids_plain"]) : expected;
    std::vector<int32_t> ids = tokenizer.Encode(text, true);
    std::vector<int32_t> plain = tokenizer.Encode(text, false);
    EXPECT_EQ(ids, expected) << "text " << Escaped(text);
    EXPECT_EQ(plain, expected_plain) << "text " << Escaped(text) << " (add_special_tokens=false)";
    failures += ids != expected || plain != expected_plain;
    if (failures > 10) FAIL() << "too many failures";
  }
}

TEST_P(TokenizerFixture, DecodeOfEncodedTextMatchesHuggingFace) {
  const Tokenizer& tokenizer = Get(GetParam());
  nlohmann::json cases = LoadJson(TokenizerData(GetParam() + "/encode.json"));
  for (const auto& c : cases) {
    std::string text = c["text"];
    std::vector<int32_t> ids = Ids(c["ids"]);
    std::string decoded = c.contains("decoded") ? c["decoded"].get<std::string>() : text;
    std::string decoded_skip =
        c.contains("decoded_skip") ? c["decoded_skip"].get<std::string>() : decoded;
    EXPECT_EQ(tokenizer.Decode(ids, false), decoded) << "ids of " << Escaped(text);
    EXPECT_EQ(tokenizer.Decode(ids, true), decoded_skip) << "ids of " << Escaped(text);
  }
}

TEST_P(TokenizerFixture, DecodeOfRandomIdsMatchesHuggingFace) {
  const Tokenizer& tokenizer = Get(GetParam());
  nlohmann::json cases = LoadJson(TokenizerData(GetParam() + "/decode.json"));
  ASSERT_GT(cases.size(), 100u);
  for (const auto& c : cases) {
    std::vector<int32_t> ids = Ids(c["ids"]);
    EXPECT_EQ(tokenizer.Decode(ids, false), c["text"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(tokenizer.Decode(ids, true), c["text_skip"].get<std::string>()) << c["ids"].dump();
  }
}

// Streaming one id at a time emits only complete characters and adds up to the full decoding:
// for every id sequence with a ByteLevel decoder, and for the encodings of valid text with the
// others (their decoders merge across tokens, see StreamDecoder).
TEST_P(TokenizerFixture, StreamDecoderMatchesDecode) {
  const Tokenizer& tokenizer = Get(GetParam());
  nlohmann::json cases = LoadJson(TokenizerData(GetParam() + "/encode.json"));
  if (tokenizer.has_byte_level_decoder()) {
    for (const auto& c : LoadJson(TokenizerData(GetParam() + "/decode.json"))) cases.push_back(c);
  }
  for (bool skip : {false, true}) {
    for (const auto& c : cases) {
      std::vector<int32_t> ids = Ids(c["ids"]);
      std::string full = tokenizer.Decode(ids, skip);
      StreamDecoder stream(tokenizer, skip);
      std::string streamed;
      for (int32_t id : ids) {
        std::string piece = stream.Next(id);
        EXPECT_EQ(utf8::FindInvalid(piece), utf8::kValid);
        streamed += piece;
        // Nothing is emitted that the full decoding does not contain at that point.
        EXPECT_TRUE(full.starts_with(streamed)) << c["ids"].dump();
      }
      streamed += stream.Finish();
      EXPECT_EQ(streamed, full) << c["ids"].dump() << " skip_special=" << skip;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerFixture, ::testing::ValuesIn(kTokenizers),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace whale
