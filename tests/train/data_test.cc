#include "train/data.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace whale {
namespace {

const std::string kData = std::string(WHALE_TEST_DATA) + "/train_data";

// Yields the given documents in order, forever.
DocumentGenerator Cycle(std::vector<Document> documents) {
  auto index = std::make_shared<size_t>(0);
  return [documents, index](Document& doc) {
    doc = documents[*index % documents.size()];
    ++*index;
  };
}

TokenBatch Shape(int64_t n_seqs, int64_t seq_len) {
  TokenBatch batch;
  batch.n_seqs = n_seqs;
  batch.seq_len = seq_len;
  return batch;
}

TEST(GeneratorDataSource, PacksIsolatedDocumentsWithMasksAndPadding) {
  // Document A: prompt 10 11, answer 12 13 (mask on the answer); B: 20 21 22 (all targets).
  Document a{{10, 11, 12, 13}, {0, 0, 1, 1}};
  Document b{{20, 21, 22}, {}};
  GeneratorDataSource source(Cycle({a, b}), {});
  TokenBatch batch = Shape(2, 7);
  source.Next(batch);
  // Row 0: A (3 positions) + B (2 positions) = 5; the next A needs 3 > 2: padding.
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{10, 11, 12, 20, 21, 0, 0,  //
                                                10, 11, 12, 20, 21, 0, 0}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{-1, 12, 13, 21, 22, -1, -1,  //
                                                 -1, 12, 13, 21, 22, -1, -1}));
  EXPECT_EQ(batch.segments, (std::vector<int32_t>{0, 0, 0, 1, 1, 2, 2,  //
                                                  0, 0, 0, 1, 1, 2, 2}));
  ValidateBatch(batch, 100, "test");
  EXPECT_EQ(source.documents_read(), 5);  // the fifth (A) waits for the next row
}

TEST(GeneratorDataSource, CutsDocumentsLongerThanARow) {
  Document long_doc{{1, 2, 3, 4, 5, 6, 7, 8}, {}};
  GeneratorDataSource source(Cycle({long_doc}), {});
  TokenBatch batch = Shape(3, 3);
  source.Next(batch);
  // 7 predictions: pieces of 3, 3 and 1 positions, each starting a row; the next copy needs 7
  // positions, more than the 2 left, so the third row ends in padding.
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 0, 0}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{2, 3, 4, 5, 6, 7, 8, -1, -1}));
  EXPECT_EQ(batch.segments, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 1, 1}));
  source.Next(batch);
  EXPECT_EQ(batch.inputs[0], 1);  // the next copy starts a row
  ValidateBatch(batch, 100, "test");
}

TEST(GeneratorDataSource, StreamModeConcatenatesDocuments) {
  Document a{{1, 2, 3}, {}};
  Document b{{4, 5}, {1, 0}};
  GeneratorSourceOptions options;
  options.isolate_documents = false;
  GeneratorDataSource source(Cycle({a, b}), options);
  TokenBatch batch = Shape(2, 4);
  source.Next(batch);
  // Stream: 1 2 3 4 5 1 2 3 4 5 ...; mask of 5 is 0.
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{1, 2, 3, 4, 5, 1, 2, 3}));
  EXPECT_EQ(batch.targets, (std::vector<int32_t>{2, 3, 4, -1, 1, 2, 3, 4}));
  EXPECT_EQ(batch.segments, std::vector<int32_t>(8, 0));
}

TEST(GeneratorDataSource, RejectsBadDocuments) {
  GeneratorDataSource mismatched(Cycle({Document{{1, 2, 3}, {1, 1}}}), {});
  TokenBatch batch = Shape(1, 4);
  EXPECT_THROW(mismatched.Next(batch), Error);
  GeneratorDataSource negative(Cycle({Document{{1, -2}, {}}}), {});
  EXPECT_THROW(negative.Next(batch), Error);
  GeneratorDataSource empty(Cycle({Document{{7}, {}}}), {});
  EXPECT_THROW(empty.Next(batch), Error);
  TokenBatch bad = Shape(0, 4);
  GeneratorDataSource fine(Cycle({Document{{1, 2}, {}}}), {});
  EXPECT_THROW(fine.Next(bad), Error);
}

TEST(ValidateBatch, CatchesEveryKindOfProblem) {
  TokenBatch batch = Shape(1, 3);
  batch.inputs = {1, 2, 3};
  batch.targets = {2, 3, -1};
  batch.segments = {0, 0, 1};
  ValidateBatch(batch, 10, "ok");
  auto broken = [&](auto change) {
    TokenBatch b = batch;
    change(b);
    EXPECT_THROW(ValidateBatch(b, 10, "bad"), Error);
  };
  broken([](TokenBatch& b) { b.inputs[0] = 10; });
  broken([](TokenBatch& b) { b.targets[0] = -2; });
  broken([](TokenBatch& b) { b.segments = {1, 1, 1}; });
  broken([](TokenBatch& b) { b.segments = {0, 1, 0}; });
  broken([](TokenBatch& b) { b.inputs.pop_back(); });
}

TEST(TextDataSource, TokenizesDocumentsOnTheFly) {
  Tokenizer tokenizer = Tokenizer::FromFile(kData + "/default/tokenizer.json");
  std::string path =
      (std::filesystem::temp_directory_path() / ("whale_text_" + std::to_string(getpid())))
          .string();
  WriteTextFile(path, "the whale\n\nsang a song");
  TextSourceOptions options;
  options.separator = "\n\n";
  options.eos_id = *tokenizer.TokenId("<|eos|>");
  TextDataSource source(tokenizer, {path}, options);
  std::vector<int32_t> stream;
  for (const char* doc : {"the whale", "sang a song"}) {
    auto ids = tokenizer.Encode(doc, false);
    stream.insert(stream.end(), ids.begin(), ids.end());
    stream.push_back(*options.eos_id);
  }
  const size_t n = stream.size();
  TokenBatch batch = Shape(3, 5);
  source.Next(batch);
  for (int64_t i = 0; i < 15; ++i) {
    // Rows are consecutive windows sharing one token (row r holds inputs 5r..5r+4 and targets
    // 5r+1..5r+5 of the stream, which repeats the file forever), so position i is token i.
    int64_t at = i;
    EXPECT_EQ(batch.inputs[i], stream[at % n]) << i;
    EXPECT_EQ(batch.targets[i], stream[(at + 1) % n]) << i;
  }
  ValidateBatch(batch, tokenizer.vocab_size(), "text");
  EXPECT_NE(source.Describe().find("text"), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace whale
