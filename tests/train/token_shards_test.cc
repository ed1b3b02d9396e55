#include "train/token_shards.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <numeric>
#include <set>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace whale {
namespace {

const std::string kData = std::string(WHALE_TEST_DATA) + "/train_data";

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("whale_shards_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Writes documents [0..n0), [n0..n0+n1), ... of consecutive ids (mod vocab) with EOS after each.
std::string WriteShard(const std::string& name, int32_t vocab, int32_t eos,
                       const std::vector<int>& doc_lengths) {
  std::string path = TempPath(name);
  ShardWriter writer(path, vocab, eos);
  int32_t next = 0;
  for (int n : doc_lengths) {
    std::vector<int32_t> doc;
    for (int i = 0; i < n; ++i) {
      doc.push_back(next);
      next = (next + 1) % vocab;
      if (next == eos) next = (next + 1) % vocab;
    }
    writer.AddDocument(doc);
  }
  writer.Finish();
  return path;
}

std::vector<int32_t> ReadAll(const TokenShard& shard) {
  std::vector<int32_t> out(static_cast<size_t>(shard.size()));
  shard.Read(0, out);
  return out;
}

TEST(TokenShards, RoundTripSixteenAndThirtyTwoBit) {
  for (int32_t vocab : {300, 65536, 65537, 200000}) {
    SCOPED_TRACE(vocab);
    std::string path = TempPath("rt");
    std::vector<int32_t> doc1 = {0, 1, vocab - 1, 7};
    std::vector<int32_t> doc2 = {vocab - 2};
    {
      ShardWriter writer(path, vocab, 5);
      writer.AddDocument(doc1);
      writer.AddDocument(doc2);
      writer.AddDocument({});
      writer.Finish();
    }
    TokenShard shard(path);
    EXPECT_EQ(shard.header().token_width, vocab <= 65536 ? 2u : 4u);
    EXPECT_EQ(shard.header().vocab_size, static_cast<uint32_t>(vocab));
    EXPECT_EQ(shard.header().eos_id, 5u);
    EXPECT_EQ(shard.header().n_documents, 3u);
    EXPECT_EQ(std::filesystem::file_size(path), kShardHeaderBytes + shard.header().token_width * 8);
    std::vector<int32_t> expected = {0, 1, vocab - 1, 7, 5, vocab - 2, 5, 5};
    EXPECT_EQ(ReadAll(shard), expected);
    std::vector<int32_t> middle(3);
    shard.Read(2, middle);
    EXPECT_EQ(middle, (std::vector<int32_t>{vocab - 1, 7, 5}));
    std::remove(path.c_str());
  }
}

TEST(TokenShards, ClearErrors) {
  std::string path = TempPath("bad");
  EXPECT_NE(ErrorOf([&] {
              ShardWriter(path, 10, 3).AddDocument(std::vector<int32_t>{10});
            }).find("has id 10"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));  // an unfinished shard is removed

  std::string good = WriteShard("good", 1000, 999, {5, 5});
  std::string bytes = ReadTextFile(good);
  auto expect_error = [&](std::string contents, const std::string& needle) {
    WriteTextFile(path, contents);
    std::string error = ErrorOf([&] { TokenShard shard(path); });
    EXPECT_NE(error.find(needle), std::string::npos) << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
  };
  expect_error("short", "header");
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  expect_error(bad_magic, "magic");
  std::string bad_version = bytes;
  bad_version[8] = 9;
  expect_error(bad_version, "version 9");
  std::string bad_width = bytes;
  bad_width[12] = 3;
  expect_error(bad_width, "width 3");
  expect_error(bytes.substr(0, bytes.size() - 1), "size mismatch");
  expect_error(bytes + "xx", "size mismatch");
  std::string huge_count = bytes;
  huge_count[31] = 0x7f;  // token count near 2^63: must not overflow the size check
  expect_error(huge_count, "size mismatch");

  // A stored id beyond the vocabulary is reported when read.
  std::string corrupt = bytes;
  corrupt[kShardHeaderBytes] = static_cast<char>(0xff);
  corrupt[kShardHeaderBytes + 1] = static_cast<char>(0xff);
  WriteTextFile(path, corrupt);
  TokenShard shard(path);
  std::vector<int32_t> out(2);
  EXPECT_NE(ErrorOf([&] { shard.Read(0, out); }).find("corrupt"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { shard.Read(11, out); }).find("outside"), std::string::npos);
  EXPECT_NE(ErrorOf([&] { shard.Read(-1, out); }).find("outside"), std::string::npos);
  std::remove(path.c_str());
  std::remove(good.c_str());
}

TEST(ShardDataSource, SequentialWindowsCoverEveryTokenOnce) {
  // 1 document of 40 tokens + EOS = 41 tokens; windows of seq_len + 1 = 9 at stride 8: 5 windows.
  std::string path = WriteShard("seq", 100, 99, {40});
  TokenShard shard(path);
  std::vector<int32_t> all = ReadAll(shard);
  ShardSourceOptions options;
  options.random = false;
  ShardDataSource source({path}, options);
  TokenBatch batch;
  batch.n_seqs = 3;
  batch.seq_len = 8;
  source.Next(batch);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t i = 0; i < 8; ++i) {
      EXPECT_EQ(batch.inputs[r * 8 + i], all[r * 8 + i]);
      EXPECT_EQ(batch.targets[r * 8 + i], all[r * 8 + i + 1]);
      EXPECT_EQ(batch.segments[r * 8 + i], 0);
    }
  }
  source.Next(batch);  // windows 3, 4, then wraps to window 0
  EXPECT_EQ(batch.inputs[0], all[24]);
  EXPECT_EQ(batch.inputs[8], all[32]);
  EXPECT_EQ(batch.targets[15], all[40]);
  EXPECT_EQ(batch.inputs[16], all[0]);
  EXPECT_EQ(source.position(), 6);
  std::remove(path.c_str());
}

TEST(ShardDataSource, RandomWindowsAreSeededAndResumable) {
  std::string a = WriteShard("ra", 500, 0, {100, 3, 50});
  std::string b = WriteShard("rb", 500, 0, {5});  // too short for a window: never used
  std::string c = WriteShard("rc", 500, 0, {300});
  ShardSourceOptions options;
  options.seed = 42;
  ShardDataSource first({a, b, c}, options);
  TokenBatch batch;
  batch.n_seqs = 4;
  batch.seq_len = 31;
  std::vector<TokenBatch> batches;
  for (int i = 0; i < 5; ++i) {
    first.Next(batch);
    batches.push_back(batch);
  }
  // Same seed: same windows. A source restored to position 8 continues with batch 2.
  ShardDataSource second({a, b, c}, options);
  second.Restore(8);
  second.Next(batch);
  EXPECT_EQ(batch.inputs, batches[2].inputs);
  EXPECT_EQ(batch.targets, batches[2].targets);
  options.seed = 43;
  ShardDataSource other({a, b, c}, options);
  other.Next(batch);
  EXPECT_NE(batch.inputs, batches[0].inputs);
  // Windows are contiguous runs of the shards (targets are the next token).
  for (const auto& bt : batches) {
    for (int64_t r = 0; r < bt.n_seqs; ++r) {
      for (int64_t i = 0; i + 1 < bt.seq_len; ++i) {
        EXPECT_EQ(bt.targets[r * 31 + i], bt.inputs[r * 31 + i + 1]);
      }
    }
  }
  // Every start offset is reachable: over many draws, windows start at many places.
  std::set<std::pair<size_t, int64_t>> starts;
  for (int64_t k = 0; k < 2000; ++k) starts.insert(first.WindowStart(k, 32));
  EXPECT_GT(starts.size(), 300u);  // 156 - 31 + 301 - 31 = 395 possible starts
  for (const auto& [shard, offset] : starts) EXPECT_NE(shard, 1u);
  for (const auto& p : {a, b, c}) std::remove(p.c_str());
}

TEST(ShardDataSource, IsolatedDocumentsRestartSegmentsAfterEos) {
  std::string path = WriteShard("iso", 50, 49, {3, 2, 10});
  ShardSourceOptions options;
  options.random = false;
  options.isolate_documents = true;
  ShardDataSource source({path}, options);
  TokenBatch batch;
  batch.n_seqs = 1;
  batch.seq_len = 9;
  source.Next(batch);
  // Tokens: 0 1 2 E 3 4 E 5 6 7 ...
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{0, 1, 2, 49, 3, 4, 49, 5, 6}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{1, 2, 49, -1, 4, 49, -1, 6, 7}));
  EXPECT_EQ(batch.segments, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 2, 2}));
  std::remove(path.c_str());
}

TEST(ShardDataSource, Errors) {
  std::string path = WriteShard("short", 50, -1, {4});
  TokenBatch batch;
  batch.n_seqs = 1;
  batch.seq_len = 8;
  ShardDataSource source({path}, {});
  EXPECT_NE(ErrorOf([&] { source.Next(batch); }).find("window of 9"), std::string::npos);
  ShardSourceOptions isolate;
  isolate.isolate_documents = true;
  EXPECT_NE(ErrorOf([&] { ShardDataSource({path}, isolate); }).find("EOS"), std::string::npos);
  std::string other = WriteShard("other", 60, -1, {4});
  EXPECT_NE(ErrorOf([&] { ShardDataSource({path, other}, {}); }).find("differ"), std::string::npos);
  std::remove(path.c_str());
  std::remove(other.c_str());
}

TEST(TokenShards, SplitDocuments) {
  EXPECT_EQ(SplitDocuments("a\n\nb\n\n\n\nc", "\n\n"),
            (std::vector<std::string_view>{"a", "b", "c"}));
  EXPECT_EQ(SplitDocuments("abc", ""), (std::vector<std::string_view>{"abc"}));
  EXPECT_TRUE(SplitDocuments("", "x").empty());
}

TEST(TokenShards, TextShardMatchesTheTokenizer) {
  Tokenizer tokenizer = Tokenizer::FromFile(kData + "/default/tokenizer.json");
  std::string text_path = TempPath("text.txt");
  WriteTextFile(text_path, "first document<|eos|>second one");
  std::string shard_path = TempPath("text.shard");
  int32_t eos = *tokenizer.TokenId("<|eos|>");
  ShardHeader header =
      WriteTextShard(tokenizer, {text_path, text_path}, "<|eos|>", eos, shard_path, false);
  EXPECT_EQ(header.n_documents, 4u);
  std::vector<int32_t> expected;
  for (int i = 0; i < 2; ++i) {
    for (const char* doc : {"first document", "second one"}) {
      auto ids = tokenizer.Encode(doc, false);
      expected.insert(expected.end(), ids.begin(), ids.end());
      expected.push_back(eos);
    }
  }
  EXPECT_EQ(ReadAll(TokenShard(shard_path)), expected);
  EXPECT_TRUE(IsTokenShard(shard_path));
  EXPECT_FALSE(IsTokenShard(text_path));
  EXPECT_FALSE(IsTokenShard(shard_path + ".missing"));
  std::remove(text_path.c_str());
  std::remove(shard_path.c_str());
}

}  // namespace
}  // namespace whale
