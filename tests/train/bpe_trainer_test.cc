#include "train/bpe_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace whale {
namespace {

const std::string kData = std::string(WHALE_TEST_DATA) + "/train_data";

BpeTrainerOptions Options(int32_t vocab, std::vector<std::string> specials = {},
                          int64_t min_frequency = 1) {
  BpeTrainerOptions options;
  options.vocab_size = vocab;
  options.special_tokens = std::move(specials);
  options.min_frequency = min_frequency;
  return options;
}

void ExpectSame(const BpeVocabulary& fast, const BpeVocabulary& reference) {
  ASSERT_EQ(fast.merges.size(), reference.merges.size());
  for (size_t i = 0; i < fast.merges.size(); ++i) {
    ASSERT_EQ(fast.merges[i], reference.merges[i]) << "merge " << i;
  }
  EXPECT_EQ(fast.tokens, reference.tokens);
  EXPECT_EQ(fast.n_special, reference.n_special);
}

TEST(BpeTrainer, FirstMergeIsTheMostFrequentPairWithIdTieBreak) {
  // "cd" occurs 3 times, "ab" 2 times; then "ab" and "xy" tie at 2: the smaller ids win.
  WordCounts words = {{"ab", 2}, {"cd", 3}, {"xy", 2}};
  BpeVocabulary v = LearnBpe(words, Options(256 + 3));
  ASSERT_EQ(v.merges.size(), 3u);
  EXPECT_EQ(v.tokens[v.merges[0].first], "c");
  EXPECT_EQ(v.tokens[v.merges[1].first], "a");
  EXPECT_EQ(v.tokens[v.merges[2].first], "x");
  EXPECT_EQ(v.tokens[256], "cd");
  EXPECT_EQ(v.tokens[257], "ab");
  EXPECT_EQ(v.tokens[258], "xy");
}

TEST(BpeTrainer, OverlappingPairsCountedAndMergedLeftToRight) {
  // "aaaaa": pairs (a,a) x4; merging left to right gives [aa, aa, a]; then (aa, aa) once and
  // (aa, a) once.
  WordCounts words = {{"aaaaa", 1}};
  BpeVocabulary v = LearnBpe(words, Options(256 + 2));
  ASSERT_EQ(v.merges.size(), 2u);
  EXPECT_EQ(v.tokens[256], "aa");
  // (aa, a) and (aa, aa) tie at 1; (256, 97) is the smaller key.
  EXPECT_EQ(v.tokens[257], "aaa");
  ExpectSame(v, LearnBpeReference(words, Options(256 + 2)));
}

TEST(BpeTrainer, SameBytesFromTwoMergesReuseTheToken) {
  // "abc" can be built as (ab, c) in one word and (a, bc) in another: the second merge adds no
  // token, so the vocabulary holds "abc" once.
  WordCounts words = {{"abab", 1}, {"abc", 1}, {"bcbc", 1}, {"abcx", 1}, {"zabc", 1}};
  BpeVocabulary fast = LearnBpe(words, Options(256 + 6));
  ExpectSame(fast, LearnBpeReference(words, Options(256 + 6)));
  std::vector<std::string> sorted = fast.tokens;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(BpeTrainer, MatchesReferenceOnRandomWords) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    WordCounts words;
    int alphabet = 2 + trial;  // small alphabets: many ties, long merge chains
    for (int w = 0; w < 150; ++w) {
      std::string word;
      int length = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < length; ++i) word += static_cast<char>('a' + rng() % alphabet);
      words.push_back({word, 1 + static_cast<int64_t>(rng() % 5)});
    }
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                words.end());
    for (int extra : {1, 31, 32, 33, 127, 129}) {
      BpeTrainerOptions options = Options(256 + 1 + extra, {"<s>"});
      ExpectSame(LearnBpe(words, options), LearnBpeReference(words, options));
    }
  }
}

TEST(BpeTrainer, MatchesReferenceOnTheCorpus) {
  BpeTrainerOptions options = Options(256 + 2 + 200, {"<|bos|>", "<|eos|>"}, 2);
  BpeTrainer trainer(options);
  trainer.AddFile(kData + "/corpus.txt");
  WordCounts words = trainer.Words();
  ExpectSame(LearnBpe(words, options), LearnBpeReference(words, options));
}

TEST(BpeTrainer, MinFrequencyStopsEarly) {
  WordCounts words = {{"ab", 3}, {"cd", 1}};
  BpeVocabulary v = LearnBpe(words, Options(300, {}, 2));
  ASSERT_EQ(v.merges.size(), 1u);
  EXPECT_EQ(v.tokens.size(), 257u);
}

TEST(BpeTrainer, NeverMergesIntoASpecialTokensText) {
  WordCounts words = {{"ab", 5}, {"cd", 1}};
  BpeVocabulary v = LearnBpe(words, Options(256 + 1 + 1, {"ab"}));
  ASSERT_EQ(v.merges.size(), 1u);
  EXPECT_EQ(v.tokens[v.n_special + 256], "cd");
  ExpectSame(v, LearnBpeReference(words, Options(256 + 1 + 1, {"ab"})));
}

TEST(BpeTrainer, CountsWordsWithThePreTokenizerAndCutsSpecials) {
  BpeTrainerOptions options = Options(300, {"<|eos|>"});
  BpeTrainer trainer(options);
  trainer.AddText("hello world<|eos|>hello 12345<|eos|>", "test");
  WordCounts words = trainer.Words();
  std::map<std::string, int64_t> got(words.begin(), words.end());
  EXPECT_EQ(got["hello"], 2);
  EXPECT_EQ(got[" world"], 1);
  EXPECT_EQ(got["123"], 1);  // runs of up to three digits
  EXPECT_EQ(got["45"], 1);
  for (const auto& [word, count] : words) EXPECT_EQ(word.find("eos"), std::string::npos) << word;

  options.split_digits = true;
  BpeTrainer digits(options);
  digits.AddText("x 12345", "test");
  std::map<std::string, int64_t> per_digit;
  for (const auto& [word, count] : digits.Words()) per_digit[word] = count;
  for (char c : std::string("12345")) EXPECT_EQ(per_digit[std::string(1, c)], 1) << c;
}

TEST(BpeTrainer, RejectsBadInput) {
  EXPECT_THROW(BpeTrainer(Options(100)), Error);  // cannot hold 256 bytes
  EXPECT_THROW(BpeTrainer(Options(300, {"a", "a"})), Error);
  EXPECT_THROW(BpeTrainer(Options(300, {""})), Error);
  BpeTrainer trainer(Options(300));
  try {
    trainer.AddText(std::string("ok\xff"), "bad.txt");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("offset 2"), std::string::npos) << e.what();
  }
}

TEST(BpeTrainer, WrittenTokenizerLoadsAndRoundTrips) {
  BpeTrainerOptions options = Options(400, {"<|bos|>", "<|eos|>"}, 2);
  BpeTrainer trainer(options);
  std::string corpus = ReadTextFile(kData + "/corpus.txt");
  trainer.AddText(corpus, "corpus.txt");
  Tokenizer tokenizer = Tokenizer::FromJsonText(trainer.TrainTokenizerJson().dump(), "trained");
  EXPECT_EQ(tokenizer.vocab_size(), 400);
  EXPECT_EQ(tokenizer.TokenId("<|bos|>"), 0);
  EXPECT_EQ(tokenizer.TokenId("<|eos|>"), 1);
  EXPECT_TRUE(tokenizer.IsSpecialToken(1));
  EXPECT_TRUE(tokenizer.has_byte_level_decoder());
  std::vector<int32_t> ids = tokenizer.Encode(corpus);
  EXPECT_EQ(tokenizer.Decode(ids), corpus);
  // Merges compress the text they were learned on.
  EXPECT_LT(ids.size(), corpus.size() / 2);
}

// The trainer is deterministic (the committed tokenizer.json is reproduced byte for byte) and its
// output encodes exactly as Hugging Face `tokenizers` encodes it (ids from
// tools/tokenizer/check_trained.js).
void CheckFixture(const std::string& name, BpeTrainerOptions options) {
  SCOPED_TRACE(name);
  BpeTrainer trainer(options);
  trainer.AddFile(kData + "/corpus.txt");
  std::string trained = trainer.TrainTokenizerJson().dump(1) + "\n";
  std::string committed = ReadTextFile(kData + "/" + name + "/tokenizer.json");
  EXPECT_EQ(trained, committed)
      << "the trainer's output changed; see tests/data/train_data/README.md";

  Tokenizer tokenizer = Tokenizer::FromFile(kData + "/" + name + "/tokenizer.json");
  auto cases = nlohmann::json::parse(ReadTextFile(kData + "/" + name + "/encode.json"));
  ASSERT_GT(cases.size(), 10u);
  for (const auto& c : cases) {
    std::string text = c["text"].get<std::string>();
    std::vector<int32_t> expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.Encode(text), expected) << text;
    EXPECT_EQ(tokenizer.Decode(expected), text);
  }
}

TEST(BpeTrainer, FixtureDefault) {
  CheckFixture("default", Options(400, {"<|bos|>", "<|eos|>"}, 2));
}

TEST(BpeTrainer, FixtureSplitDigits) {
  BpeTrainerOptions options = Options(330, {"<|eos|>"}, 2);
  options.split_digits = true;
  CheckFixture("digits", options);
}

}  // namespace
}  // namespace whale
