// The safetensors writer and reader end to end: single files, sharded checkpoints with
// model.safetensors.index.json, and every index problem a checkpoint directory can have.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
using testing::ExpectErrorMessage;
using testing::SafetensorsBytes;
using testing::ScratchDir;
using testing::WriteBytes;

// Deterministic contents: byte i of tensor `salt` is (i * 31 + salt) mod 251.
uint8_t Pattern(size_t i, int salt) {
  return static_cast<uint8_t>((i * 31 + static_cast<size_t>(salt)) % 251);
}

PendingTensor Pending(std::string name, DType dtype, std::vector<int64_t> shape, int salt) {
  PendingTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.fill = [salt](std::span<uint8_t> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = Pattern(i, salt);
  };
  return t;
}

// Every tensor of `expected` is in `checkpoint` with its dtype, shape and bytes.
void ExpectContents(const Checkpoint& checkpoint, const std::vector<PendingTensor>& expected) {
  std::vector<std::string> names;
  for (size_t k = 0; k < expected.size(); ++k) {
    const PendingTensor& want = expected[k];
    names.push_back(want.name);
    ASSERT_TRUE(checkpoint.Has(want.name)) << want.name;
    const Tensor got = checkpoint.Get(want.name);
    EXPECT_EQ(got.dtype(), want.dtype) << want.name;
    EXPECT_EQ(std::vector<int64_t>(got.shape().begin(), got.shape().end()), want.shape);
    std::vector<uint8_t> bytes(got.nbytes());
    want.fill(bytes);
    ASSERT_EQ(got.nbytes(), bytes.size());
    if (!bytes.empty()) {
      EXPECT_EQ(std::memcmp(got.bytes(), bytes.data(), bytes.size()), 0) << want.name;
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(checkpoint.Names(), names);
}

std::vector<PendingTensor> SampleTensors() {
  return {
      Pending("model.embed_tokens.weight", DType::BF16, {7, 5}, 1),
      Pending("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", DType::F8_E4M3, {9, 13}, 2),
      Pending("model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv", DType::F32, {1, 1},
              3),
      Pending("empty", DType::F32, {0, 4}, 4),
      Pending("scalar", DType::F64, {}, 5),
      Pending("model.norm.weight", DType::F16, {33}, 6),
      Pending("ids", DType::I64, {3}, 7),
      Pending("mask", DType::BOOL, {2, 3}, 8),
  };
}

TEST(Safetensors, SingleFileRoundTripWithMetadata) {
  ScratchDir dir;
  const auto tensors = SampleTensors();
  const std::string path = dir / "x.safetensors";
  WriteSafetensors(path, tensors, {{"format", "pt"}, {"whale", "test"}});
  const SafetensorsFile file(path);
  EXPECT_EQ(file.header().metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"whale", "test"}}));
  EXPECT_EQ(file.header().data_start % 8, 0u) << "header padded to a multiple of 8";
  // Written widest element type first (given order among equals), back to back, so that every
  // tensor is aligned for its type.
  std::vector<PendingTensor> expected_order = tensors;
  std::stable_sort(expected_order.begin(), expected_order.end(),
                   [](const auto& a, const auto& b) { return SizeOf(a.dtype) > SizeOf(b.dtype); });
  uint64_t offset = 0;
  for (const auto& t : expected_order) {
    const SafetensorsEntry* entry = file.Find(t.name);
    ASSERT_NE(entry, nullptr) << t.name;
    EXPECT_EQ(entry->begin, offset) << t.name;
    EXPECT_EQ((file.header().data_start + entry->begin) % SizeOf(t.dtype), 0u) << t.name;
    offset = entry->end;
  }
  EXPECT_EQ(file.header().data_start + offset, fs::file_size(path));
  EXPECT_EQ(file.Find("absent"), nullptr);
  const Tensor scalar = file.Get("scalar");
  EXPECT_EQ(scalar.rank(), 0);
  EXPECT_EQ(scalar.numel(), 1);
  const Tensor empty = file.Get("empty");
  EXPECT_EQ(empty.numel(), 0);
  ExpectErrorMessage([&] { file.Get("absent"); }, path + ": no tensor 'absent'");
}

TEST(Safetensors, SingleFileCheckpoint) {
  ScratchDir dir;
  const auto tensors = SampleTensors();
  const auto written = WriteCheckpoint(dir.path(), tensors, 1 << 20);
  EXPECT_EQ(written, std::vector<std::string>{"model.safetensors"});
  const Checkpoint checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.n_files(), 1u);
  ExpectContents(checkpoint, tensors);
  EXPECT_EQ(checkpoint.FileOf("ids"), dir / "model.safetensors");
  EXPECT_EQ(checkpoint.Entry("ids").dtype, DType::I64);
  ExpectErrorMessage([&] { checkpoint.Get("nope"); },
                     dir.path() + ": checkpoint has no tensor 'nope'");
  ExpectErrorMessage([&] { checkpoint.Entry("nope"); },
                     dir.path() + ": checkpoint has no tensor 'nope'");
  ExpectErrorMessage([&] { checkpoint.FileOf("nope"); },
                     dir.path() + ": checkpoint has no tensor 'nope'");
}

// The huge-page copy holds the same bytes as the map, on a 2 MiB boundary, for files that are not
// a whole number of pages; WHALE_LOAD chooses between the two and refuses anything else.
TEST(Safetensors, HugePageCopyEqualsTheMap) {
  ScratchDir dir;
  for (size_t size : {size_t{1}, size_t{4097}, (size_t{3} << 20) + 5}) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 + i / 7);
    const std::string path = dir / "blob";
    WriteTextFile(path, bytes);
    const MappedFile mapped(path, FileLoad::kMap), copied(path, FileLoad::kHugeCopy);
    ASSERT_EQ(copied.size(), size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copied.bytes().data()) % (size_t{2} << 20), 0u);
    EXPECT_TRUE(std::equal(mapped.bytes().begin(), mapped.bytes().end(), copied.bytes().begin()));
  }
  const auto tensors = SampleTensors();
  WriteCheckpoint(dir.path(), tensors, 1 << 20);
  ::setenv("WHALE_LOAD", "copy", 1);
  const Checkpoint copied = Checkpoint::Open(dir.path(), Checkpoint::Load::kAuto);
  EXPECT_STREQ(copied.load_description(), "copied to huge pages");
  ExpectContents(copied, tensors);
  ::setenv("WHALE_LOAD", "map", 1);
  EXPECT_STREQ(Checkpoint::Open(dir.path(), Checkpoint::Load::kAuto).load_description(), "mapped");
  ::setenv("WHALE_LOAD", "mmap", 1);
  ExpectErrorMessage([&] { Checkpoint::Open(dir.path(), Checkpoint::Load::kAuto); },
                     "WHALE_LOAD='mmap': expected \"map\" or \"copy\" (or unset: copy when it "
                     "fits)");
  ::unsetenv("WHALE_LOAD");
  // Without kAuto nothing is copied, whatever the environment says.
  EXPECT_STREQ(Checkpoint::Open(dir.path()).load_description(), "mapped");
}

TEST(Safetensors, ShardedCheckpointWithIndex) {
  ScratchDir dir;
  const auto tensors = SampleTensors();
  // 70 bytes per shard at most: BF16 [7,5] (70) alone; F8 [9,13] (117) alone; the rest grouped.
  const auto written = WriteCheckpoint(dir.path(), tensors, 70);
  ASSERT_GE(written.size(), 4u);
  EXPECT_EQ(written.back(), "model.safetensors.index.json");
  const size_t n_shards = written.size() - 1;
  for (size_t s = 0; s < n_shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, n_shards);
    EXPECT_EQ(written[s], name);
  }
  const auto index = nlohmann::json::parse(ReadTextFile(dir / "model.safetensors.index.json"));
  uint64_t total = 0;
  for (const auto& t : tensors) {
    const uint64_t bytes = SizeOf(t.dtype) * static_cast<uint64_t>(std::accumulate(
                                                 t.shape.begin(), t.shape.end(), int64_t{1},
                                                 std::multiplies<int64_t>()));
    total += bytes;
    EXPECT_TRUE(index["weight_map"].contains(t.name)) << t.name;
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"],
            "model-00001-of-0000" + std::to_string(n_shards) + ".safetensors");

  const Checkpoint checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.n_files(), n_shards);
  ExpectContents(checkpoint, tensors);
  for (const auto& t : tensors)
    EXPECT_EQ(checkpoint.FileOf(t.name), dir / index["weight_map"][t.name].get<std::string>());
  // No shard is over the limit unless it holds a single tensor larger than the limit.
  for (size_t s = 0; s < n_shards; ++s) {
    const SafetensorsFile shard(dir / written[s]);
    uint64_t bytes = 0;
    for (const auto& e : shard.header().entries) bytes += e.end - e.begin;
    EXPECT_TRUE(bytes <= 70 || shard.header().entries.size() == 1) << written[s];
  }
}

TEST(Safetensors, RewritingSwitchesBetweenSingleAndSharded) {
  ScratchDir dir;
  const auto tensors = SampleTensors();
  WriteCheckpoint(dir.path(), tensors, 1 << 20);
  WriteCheckpoint(dir.path(), tensors, 70);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors")) << "a stale single file would shadow shards";
  ExpectContents(Checkpoint::Open(dir.path()), tensors);
  WriteCheckpoint(dir.path(), tensors, 1 << 20);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  ExpectContents(Checkpoint::Open(dir.path()), tensors);
}

TEST(Safetensors, EmptyCheckpointAndOnlyZeroSizeTensors) {
  ScratchDir dir;
  WriteCheckpoint(dir.path(), {}, 100);
  EXPECT_TRUE(Checkpoint::Open(dir.path()).Names().empty());
  ScratchDir dir2;
  const std::vector<PendingTensor> empties = {Pending("a", DType::F32, {0}, 1),
                                              Pending("b", DType::BF16, {3, 0, 2}, 2)};
  WriteCheckpoint(dir2.path(), empties, 1);
  ExpectContents(Checkpoint::Open(dir2.path()), empties);
}

TEST(Safetensors, DirectoryWithoutIndexOpensEverySafetensorsFile) {
  ScratchDir dir;
  WriteSafetensors(dir / "b.safetensors", {Pending("b", DType::U8, {4}, 1)});
  WriteSafetensors(dir / "a.safetensors", {Pending("a", DType::U8, {4}, 2)});
  WriteBytes(dir / "notes.txt", "not a tensor file");
  const Checkpoint checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.n_files(), 2u);
  EXPECT_EQ(checkpoint.FileOf("a"), dir / "a.safetensors");
  EXPECT_EQ(checkpoint.FileOf("b"), dir / "b.safetensors");
}

TEST(Safetensors, NotACheckpointDirectory) {
  ScratchDir dir;
  ExpectErrorMessage([&] { Checkpoint::Open(dir / "missing"); },
                     dir / "missing" + ": not a directory");
  ExpectErrorMessage(
      [&] { Checkpoint::Open(dir.path()); },
      dir.path() + ": no model.safetensors, model.safetensors.index.json or *.safetensors file");
}

TEST(Safetensors, MalformedShardNamesItsFile) {
  ScratchDir dir;
  WriteBytes(dir / "model.safetensors", SafetensorsBytes(R"({"w": {"dtype": "F32"}})", 0));
  ExpectErrorMessage([&] { Checkpoint::Open(dir.path()); },
                     dir / "model.safetensors" + ": tensor 'w': missing field 'shape'");
}

// A two-shard checkpoint to break in the index tests below.
struct ShardedFixture {
  ScratchDir dir;
  std::string index;
  std::string shard1 = "model-00001-of-00002.safetensors";
  std::string shard2 = "model-00002-of-00002.safetensors";
  ShardedFixture() {
    WriteCheckpoint(dir.path(),
                    {Pending("a", DType::F32, {4}, 1), Pending("b", DType::F32, {4}, 2)}, 16);
    index = dir / "model.safetensors.index.json";
  }
  void WriteIndex(const std::string& text) const { WriteBytes(index, text); }
};

TEST(Safetensors, IndexIsNotJson) {
  ShardedFixture f;
  f.WriteIndex("{\"weight_map\": ");
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); }, f.index + ": not well-formed JSON");
  f.WriteIndex("[]");
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.index + ": expected a JSON object, found array");
}

TEST(Safetensors, IndexWithoutWeightMap) {
  ShardedFixture f;
  f.WriteIndex(R"({"metadata": {"total_size": 32}})");
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.index + ": missing object 'weight_map'");
  f.WriteIndex(R"({"weight_map": ["a", "b"]})");
  ExpectErrorMessage(
      [&] { Checkpoint::Open(f.dir.path()); },
      f.index + ": 'weight_map' must be an object of tensor name -> file, found array");
  f.WriteIndex(R"({"weight_map": {"a": 1}})");
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.index + ": weight_map['a'] must be a file name string, found number 1");
}

TEST(Safetensors, IndexListsATensorNoShardHas) {
  ShardedFixture f;
  f.WriteIndex(R"({"weight_map": {"a": ")" + f.shard1 + R"(", "b": ")" + f.shard2 + R"(", "c": ")" +
               f.shard2 + R"("}})");
  ExpectErrorMessage(
      [&] { Checkpoint::Open(f.dir.path()); },
      f.index + ": tensor 'c' is listed for " + f.shard2 + " but that file does not contain it");
}

TEST(Safetensors, ShardHasATensorTheIndexDoesNotList) {
  ShardedFixture f;
  f.WriteIndex(R"({"weight_map": {"a": ")" + f.shard1 + R"("}})");
  // Only the listed shard is opened, and it holds only 'a': fine. List 'b' elsewhere instead.
  EXPECT_EQ(Checkpoint::Open(f.dir.path()).Names(), std::vector<std::string>{"a"});
  WriteSafetensors(f.dir / f.shard1,
                   {Pending("a", DType::F32, {4}, 1), Pending("x", DType::U8, {1}, 3)});
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.dir / f.shard1 + ": tensor 'x' is not listed in " + f.index);
}

TEST(Safetensors, IndexPutsATensorInTheWrongShard) {
  ShardedFixture f;
  f.WriteIndex(R"({"weight_map": {"a": ")" + f.shard2 + R"(", "b": ")" + f.shard2 + R"("}})");
  ExpectErrorMessage(
      [&] { Checkpoint::Open(f.dir.path()); },
      f.index + ": tensor 'a' is listed for " + f.shard2 + " but that file does not contain it");
  f.WriteIndex(R"({"weight_map": {"b": ")" + f.shard1 + R"(", "a": ")" + f.shard1 + R"(", "c": ")" +
               f.shard2 + R"("}})");
  ExpectErrorMessage(
      [&] { Checkpoint::Open(f.dir.path()); },
      f.dir / f.shard2 + ": tensor 'b' is listed in " + f.index + " under " + f.shard1);
}

TEST(Safetensors, DuplicateTensorAcrossShards) {
  ShardedFixture f;
  WriteSafetensors(f.dir / f.shard2,
                   {Pending("b", DType::F32, {4}, 2), Pending("a", DType::F32, {4}, 9)});
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.dir.path() + ": tensor 'a' appears in both " + f.dir / f.shard1 + " and " +
                         f.dir / f.shard2);
}

TEST(Safetensors, IndexShardNamesMustStayInTheDirectory) {
  ShardedFixture f;
  const std::string message_tail = "', which is not a file name inside the checkpoint directory";
  for (const std::string& bad :
       {std::string("../outside.safetensors"), std::string("/etc/passwd"), std::string(".."),
        std::string("."), std::string(""), std::string("sub/model.safetensors"),
        std::string("a\\\\b.safetensors")}) {
    f.WriteIndex(R"({"weight_map": {"a": ")" + bad + R"("}})");
    std::string shown = bad;
    if (shown == "a\\\\b.safetensors") shown = "a\\b.safetensors";
    ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                       f.index + ": weight_map['a'] names '" + shown + message_tail);
  }
  // An embedded NUL would truncate the name the OS sees.
  f.WriteIndex(R"({"weight_map": {"a": "model-00001-of-00002.safetensors\u0000.txt"}})");
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.index +
                         ": weight_map['a'] names 'model-00001-of-00002.safetensors\\x00.txt" +
                         message_tail);
}

TEST(Safetensors, IndexNamesAMissingShard) {
  ShardedFixture f;
  fs::remove(f.dir / f.shard2);
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.dir / f.shard2 + ": cannot open: No such file or directory");
}

TEST(Safetensors, TruncatedShard) {
  ShardedFixture f;
  fs::resize_file(f.dir / f.shard2, fs::file_size(f.dir / f.shard2) - 1);
  ExpectErrorMessage([&] { Checkpoint::Open(f.dir.path()); },
                     f.dir / f.shard2 +
                         ": tensor 'b': data_offsets end 16 is past the data section (15 bytes): "
                         "truncated file?");
}

TEST(Safetensors, WriterRejectsWhatAReaderWould) {
  ScratchDir dir;
  const std::string path = dir / "w.safetensors";
  ExpectErrorMessage(
      [&] {
        WriteSafetensors(path, {Pending("a", DType::U8, {1}, 1), Pending("a", DType::U8, {1}, 1)});
      },
      path + ": cannot write tensor 'a': the name appears twice");
  ExpectErrorMessage([&] { WriteSafetensors(path, {Pending("__metadata__", DType::U8, {1}, 1)}); },
                     path +
                         ": cannot write tensor '__metadata__': the name is reserved for the "
                         "header's metadata");
  ExpectErrorMessage(
      [&] {
        WriteSafetensors(path, {Pending("n", DType::U8, {2, -1}, 1)});
      },
      path + ": cannot write tensor 'n': negative dimension in shape [2, -1]");
  ExpectErrorMessage(
      [&] {
        WriteSafetensors(path, {Pending("r", DType::U8, {1, 1, 1, 1, 1, 1, 1, 1, 1}, 1)});
      },
      path + ": cannot write tensor 'r': rank 9 exceeds the supported 8");
  PendingTensor no_fill = Pending("f", DType::U8, {1}, 1);
  no_fill.fill = nullptr;
  ExpectErrorMessage([&] { WriteSafetensors(path, {no_fill}); },
                     path + ": cannot write tensor 'f': no fill function");
  ExpectErrorMessage([&] { WriteSafetensors(path, {Pending("\xFF", DType::U8, {1}, 1)}); },
                     path + ": a tensor name or metadata string is not valid UTF-8");
  EXPECT_FALSE(fs::exists(path)) << "nothing is written when the input is rejected";
  ExpectErrorMessage(
      [&] {
        WriteCheckpoint(dir / "ckpt",
                        {Pending("a", DType::U8, {1}, 1), Pending("a", DType::U8, {1}, 1)}, 1);
      },
      dir / "ckpt" + ": cannot write tensor 'a': the name appears twice");
}

TEST(MappedFile, ErrorsNameThePath) {
  ScratchDir dir;
  ExpectErrorMessage([&] { MappedFile file(dir / "absent"); },
                     dir / "absent" + ": cannot open: No such file or directory");
  ExpectErrorMessage([&] { MappedFile file(dir.path()); }, dir.path() + ": not a regular file");
  ExpectErrorMessage([&] { ReadTextFile(dir.path()); }, dir.path() + ": not a regular file");
  ExpectErrorMessage([&] { WriteTextFile(dir / "no/such/dir.txt", "x"); },
                     dir / "no/such/dir.txt" + ": cannot create: No such file or directory");
}

TEST(MappedFile, MapsContentsAndEmptyFiles) {
  ScratchDir dir;
  WriteTextFile(dir / "t.txt", "hello\nworld");
  const MappedFile file(dir / "t.txt");
  EXPECT_EQ(file.size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file.bytes().data()), file.size()),
            "hello\nworld");
  EXPECT_EQ(ReadTextFile(dir / "t.txt"), "hello\nworld");
  WriteTextFile(dir / "empty", "");
  EXPECT_EQ(MappedFile(dir / "empty").size(), 0u);
  EXPECT_EQ(ReadTextFile(dir / "empty"), "");
  ExpectErrorMessage(
      [&] { SafetensorsFile f(dir / "empty"); },
      dir / "empty" + ": file is 0 bytes, too short for a safetensors header (8 bytes)");
}

}  // namespace
}  // namespace whale
