// Single components against probes from Hugging Face tokenizers 0.23.2 (components.json, written by
// tools/tokenizer/make_fixtures.js): Split with every behaviour and the regexes of DeepSeek-V3,
// Qwen2, Llama-3 and GPT-2, every supported pre-tokenizer, normalizer and decoder type.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fixture_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace whale {
namespace {

using testing::Escaped;
using testing::LoadJson;
using testing::TokenizerData;

const nlohmann::json& Components() {
  static const nlohmann::json json = LoadJson(TokenizerData("components.json"));
  return json;
}

const nlohmann::json& TextSet(const std::string& name) {
  return Components()["text_sets"][name];
}

std::vector<std::string> PreTokenize(const PreTokenizer& pre_tokenizer, const std::string& text) {
  PieceArena arena;
  // Hugging Face drops empty pieces before any pre-tokenizer sees them.
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({text, false, true});
  pre_tokenizer.Apply(pieces, arena);
  std::vector<std::string> out;
  for (const Piece& piece : pieces) {
    std::string s;
    if (piece.raw_bytes) {
      byte_level::AppendMapped(s, piece.text);
    } else {
      s = piece.text;
    }
    out.push_back(s);
  }
  return out;
}

void CheckPreTokenizerCases(const char* key) {
  size_t checked = 0;
  for (const auto& c : Components()[key]) {
    auto pre_tokenizer = PreTokenizer::FromJson(c["config"], "components.json");
    ASSERT_TRUE(pre_tokenizer);
    const auto& texts = TextSet(c["text_set"]);
    ASSERT_EQ(texts.size(), c["pieces"].size());
    for (size_t i = 0; i < texts.size(); ++i) {
      std::string text = texts[i];
      auto expected = c["pieces"][i].get<std::vector<std::string>>();
      EXPECT_EQ(PreTokenize(*pre_tokenizer, text), expected)
          << c["config"].dump() << " on " << Escaped(text);
      ++checked;
    }
  }
  EXPECT_GT(checked, 500u);
}

TEST(Components, SplitMatchesHuggingFace) {
  CheckPreTokenizerCases("split");
}

TEST(Components, PreTokenizersMatchHuggingFace) {
  CheckPreTokenizerCases("pre_tokenizers");
}

TEST(Components, NormalizersMatchHuggingFace) {
  size_t checked = 0;
  for (const auto& c : Components()["normalizers"]) {
    auto normalizer = Normalizer::FromJson(c["config"], "components.json");
    ASSERT_TRUE(normalizer);
    const auto& texts = TextSet(c["text_set"]);
    ASSERT_EQ(texts.size(), c["outputs"].size());
    for (size_t i = 0; i < texts.size(); ++i) {
      std::string text = texts[i];
      normalizer->Normalize(text);
      EXPECT_EQ(text, c["outputs"][i].get<std::string>())
          << c["config"].dump() << " on " << Escaped(texts[i]);
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000u);
}

TEST(Components, DecodersMatchHuggingFace) {
  for (const auto& c : Components()["decoders"]) {
    auto decoder = Decoder::FromJson(c["config"], "components.json");
    ASSERT_TRUE(decoder);
    auto tokens = c["tokens"].get<std::vector<std::string>>();
    decoder->DecodeChain(tokens);
    std::string text;
    for (const auto& t : tokens) text += t;
    EXPECT_EQ(text, c["text"].get<std::string>()) << c["config"].dump();
  }
}

}  // namespace
}  // namespace whale
