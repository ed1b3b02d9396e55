// Tokenizer behaviour beyond the fixture sweep: the spec's verified vectors, the transformers BOS
// rule, id/string lookups, streaming across split characters, and error handling.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "fixture_util.h"
#include "util/error.h"

namespace whale {
namespace {

using testing::TokenizerData;
using Ids = std::vector<int32_t>;

const Tokenizer& DeepSeek() {
  static const Tokenizer tokenizer =
      Tokenizer::FromFile(TokenizerData("deepseek-v3/tokenizer.json"));
  return tokenizer;
}

const Tokenizer& DeepSeekModelDir() {
  static const Tokenizer tokenizer = Tokenizer::FromModelDir(TokenizerData("deepseek-v3"));
  return tokenizer;
}

// Vectors verified against the Rust library (spec tokenizer.md section 9.1).
TEST(DeepSeekTokenizer, SpecVectors) {
  const Tokenizer& t = DeepSeek();
  EXPECT_EQ(t.Encode("Hello world"), (Ids{19923, 2058}));
  EXPECT_EQ(t.Encode("<｜begin▁of▁sentence｜>Hi there"), (Ids{0, 23166, 1031}));
  EXPECT_EQ(t.Encode("1234567 ½²"), (Ids{6895, 18009, 25, 223, 23951, 1628}));
  EXPECT_EQ(t.Encode("It'S ok's"), (Ids{2107, 28138, 9109, 734}));
  EXPECT_EQ(t.Encode("  x  \n\n y"), (Ids{223, 1527, 6776, 383}));
  EXPECT_EQ(t.Encode("hello  123"), (Ids{33310, 262, 6895}));
  EXPECT_EQ(t.Encode("x 你好 y"), (Ids{90, 223, 30594, 383}));
  EXPECT_EQ(t.Encode("a\u00a0\u00a0b"), (Ids{67, 2162, 2162, 68}));
  EXPECT_EQ(t.Encode("<｜User｜>hi<｜Assistant｜>"), (Ids{128803, 6366, 128804}));
  EXPECT_EQ(t.Encode("e\u0301"), (Ids{71, 17793}));
  EXPECT_EQ(t.Encode(""), Ids{});
  EXPECT_EQ(t.Decode(Ids{0, 19923, 2058, 1}, false),
            "<｜begin▁of▁sentence｜>Hello world<｜end▁of▁sentence｜>");
  EXPECT_EQ(t.Decode(Ids{0, 19923, 2058, 1}, true), "Hello world");
  EXPECT_EQ(t.Decode(Ids{128803, 19923, 128804, 128805}, true), "<｜User｜>Hello<｜Assistant｜>");
}

TEST(DeepSeekTokenizer, RenderedChatPromptIds) {
  // spec 8.6: the rendered DeepSeek-V3 prompt, encoded without adding special tokens.
  std::string prompt =
      "<｜begin▁of▁sentence｜>You are "
      "helpful.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
      "<｜User｜>2+2?<｜Assistant｜>";
  EXPECT_EQ(DeepSeek().Encode(prompt, false), (Ids{0, 3476, 477, 11502, 16, 128803, 23166, 128804,
                                                   19923, 3, 1, 128803, 20, 13, 20, 33, 128804}));
}

TEST(DeepSeekTokenizer, Lookups) {
  const Tokenizer& t = DeepSeek();
  EXPECT_EQ(t.vocab_size(), 128815);
  EXPECT_EQ(t.TokenId("<｜User｜>"), 128803);
  EXPECT_EQ(t.TokenId("<|EOT|>"), 128805);
  EXPECT_EQ(t.TokenId("Hello"), 19923);
  EXPECT_EQ(t.TokenId("no such token"), std::nullopt);
  EXPECT_EQ(t.TokenString(2058), "Ġworld");
  EXPECT_EQ(t.TokenString(128814), "<｜tool▁sep｜>");
  EXPECT_EQ(t.TokenString(129000), std::nullopt);
  EXPECT_TRUE(t.IsSpecialToken(0));
  EXPECT_TRUE(t.IsSpecialToken(128805));
  EXPECT_FALSE(t.IsSpecialToken(128803));  // role tokens are not special in DeepSeek-V3
  EXPECT_FALSE(t.IsSpecialToken(19923));
  // A bare tokenizer.json carries no tokenizer_config.json.
  EXPECT_EQ(t.bos_id(), std::nullopt);
}

// transformers' LlamaTokenizerFast with add_bos_token=true prepends BOS (spec 5.2); the raw Rust
// library does not.
TEST(DeepSeekTokenizer, ModelDirAddsBosLikeTransformers) {
  const Tokenizer& t = DeepSeekModelDir();
  EXPECT_EQ(t.Encode("Hello world"), (Ids{0, 19923, 2058}));
  EXPECT_EQ(t.Encode("Hello world", false), (Ids{19923, 2058}));
  EXPECT_EQ(t.Encode(""), (Ids{0}));
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(t.eos_token(), "<｜end▁of▁sentence｜>");
  ASSERT_EQ(t.config().chat_templates.size(), 1u);
  EXPECT_EQ(t.config().chat_templates[0].first, "default");
  EXPECT_NE(t.config().chat_templates[0].second.find("<｜Assistant｜>"), std::string::npos);
}

TEST(DeepSeekTokenizer, RejectsInvalidUtf8) {
  for (const std::string& bad :
       {std::string("abc\xff"), std::string("\xc3"), std::string("a\xed\xa0\x80"),
        std::string("\xf4\x90\x80\x80"), std::string("\xc0\xaf")}) {
    try {
      DeepSeek().Encode(bad);
      FAIL() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
    }
  }
}

TEST(DeepSeekTokenizer, DecodeRoundTripsValidText) {
  const Tokenizer& t = DeepSeek();
  for (std::string text : {"Hello, 世界! 🎉👨‍👩‍👧", "tabs\tand\r\nCRLF  ",
                           "<｜User｜>x<｜Assistant｜>", "한국어 텍스트입니다", "ｶﾀｶﾅ and ١٢٣"}) {
    EXPECT_EQ(t.Decode(t.Encode(text)), text);
  }
}

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  const Tokenizer& t = DeepSeek();
  // "😀" is four bytes; DeepSeek encodes it in pieces that end inside the character.
  Ids ids = t.Encode("a😀b");
  ASSERT_GT(ids.size(), 3u);
  StreamDecoder stream(t);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.Next(id));
  EXPECT_EQ(pieces.front(), "a");
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "emitted a replacement character";
    joined += p;
  }
  EXPECT_EQ(joined, "a😀b");
  EXPECT_EQ(stream.Finish(), "");
}

TEST(StreamDecoder, FinishFlushesIncompleteCharacter) {
  const Tokenizer& t = DeepSeek();
  // Byte-level tokens for the first two bytes of "日" (E6 97 A5).
  auto e6 = t.TokenId("æ");
  auto x97 = t.TokenId("Ĺ");  // 0x97 is not printable: mapped above U+0100
  ASSERT_TRUE(e6 && x97);
  StreamDecoder stream(t);
  EXPECT_EQ(stream.Next(*e6), "");
  EXPECT_EQ(stream.Next(*x97), "");
  EXPECT_EQ(stream.Finish(), "\xEF\xBF\xBD");
  // An invalid byte is emitted at once, like the lossy full decode.
  auto ff = t.TokenId("ÿ");
  ASSERT_TRUE(ff);
  EXPECT_EQ(stream.Next(*ff), "\xEF\xBF\xBD");
}

TEST(StreamDecoder, GenericDecoderPath) {
  Tokenizer t = Tokenizer::FromFile(TokenizerData("sentencepiece-style/tokenizer.json"));
  ASSERT_FALSE(t.has_byte_level_decoder());
  std::string text = "Hello world, 안녕 😀!";
  Ids ids = t.Encode(text, false);
  StreamDecoder stream(t);
  std::string joined;
  for (int32_t id : ids) {
    std::string piece = stream.Next(id);
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos);
    joined += piece;
  }
  joined += stream.Finish();
  EXPECT_EQ(joined, t.Decode(ids));
}

// Threads share one tokenizer (the word cache is shared); results must not change.
TEST(DeepSeekTokenizer, ConcurrentEncodingIsConsistent) {
  const Tokenizer& t = DeepSeek();
  std::string text = "Concurrency 测试 テスト 1234567 ";
  for (int i = 0; i < 6; ++i) text += text;
  Ids expected = t.Encode(text);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      bool all = true;
      for (int r = 0; r < 5; ++r) all &= t.Encode(text) == expected;
      ok[k] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_TRUE(ok[k]);
}

}  // namespace
}  // namespace whale
