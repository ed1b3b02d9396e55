// ParseSafetensorsHeader: one test per malformed-header case, each with its exact message, and
// the valid corner cases (zero-size tensors, scalars, gaps, metadata) that must still load.
#include <gtest/gtest.h>

#include <string>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace whale {
namespace {

using testing::AsBytes;
using testing::ExpectErrorMessage;
using testing::LengthPrefix;
using testing::SafetensorsBytes;

constexpr const char* kPath = "dir/model.safetensors";

SafetensorsHeader Parse(const std::string& bytes) {
  return ParseSafetensorsHeader(AsBytes(bytes), kPath);
}

// A header whose entries are given as JSON text, followed by `data_bytes` bytes of data.
void ExpectHeaderError(const std::string& header, size_t data_bytes, const std::string& message) {
  const std::string bytes = SafetensorsBytes(header, data_bytes);
  ExpectErrorMessage([&] { Parse(bytes); }, std::string(kPath) + ": " + message);
}

TEST(SafetensorsHeader, ParsesAValidHeader) {
  const std::string header = R"({"b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},)"
                             R"( "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},)"
                             R"( "__metadata__": {"format": "pt", "note": ""}})";
  const std::string bytes = SafetensorsBytes(header, 22);
  const SafetensorsHeader parsed = Parse(bytes);
  ASSERT_EQ(parsed.entries.size(), 2u);
  EXPECT_EQ(parsed.entries[0].name, "a");  // sorted by offset, not by name or header order
  EXPECT_EQ(parsed.entries[0].dtype, DType::F32);
  EXPECT_EQ(parsed.entries[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(parsed.entries[1].name, "b");
  EXPECT_EQ(parsed.entries[1].begin, 16u);
  EXPECT_EQ(parsed.entries[1].end, 22u);
  EXPECT_EQ(parsed.data_start, 8 + header.size());
  EXPECT_EQ(parsed.metadata.at("format"), "pt");
  EXPECT_EQ(parsed.metadata.at("note"), "");
}

TEST(SafetensorsHeader, AcceptsEmptyScalarAndZeroSizeTensorsAndGaps) {
  // A scalar (rank 0, one element), zero-size tensors anywhere in the data section (also inside
  // another tensor's span, which they cannot overlap), and unused bytes between tensors.
  const std::string header =
      R"({"scalar": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]},)"
      R"( "empty": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]},)"
      R"( "empty_end": {"dtype": "U8", "shape": [0], "data_offsets": [40, 40]},)"
      R"( "after_gap": {"dtype": "I32", "shape": [2], "data_offsets": [16, 24]}})";
  const SafetensorsHeader parsed = Parse(SafetensorsBytes(header, 40));
  EXPECT_EQ(parsed.entries.size(), 4u);
  EXPECT_TRUE(Parse(SafetensorsBytes("{}", 0)).entries.empty());
  EXPECT_TRUE(Parse(SafetensorsBytes("  {}  ", 3)).entries.empty());  // padding, trailing bytes
}

TEST(SafetensorsHeader, FileShorterThanTheLengthPrefix) {
  ExpectErrorMessage([] { Parse("abcde"); },
                     "dir/model.safetensors: file is 5 bytes, too short for a safetensors header "
                     "(8 bytes)");
  ExpectErrorMessage([] { Parse(""); },
                     "dir/model.safetensors: file is 0 bytes, too short for a safetensors header "
                     "(8 bytes)");
}

TEST(SafetensorsHeader, HeaderLengthAboveTheCap) {
  const std::string bytes = LengthPrefix(kMaxSafetensorsHeaderBytes + 1) + "{}";
  ExpectErrorMessage([&] { Parse(bytes); },
                     "dir/model.safetensors: header length 100000001 exceeds the limit of "
                     "100000000 bytes");
  // The largest u64: no arithmetic on it may wrap around.
  ExpectErrorMessage([] { Parse(std::string(8, '\xFF') + "{}"); },
                     "dir/model.safetensors: header length 18446744073709551615 exceeds the limit "
                     "of 100000000 bytes");
}

TEST(SafetensorsHeader, HeaderLengthPastTheEndOfTheFile) {
  const std::string bytes = LengthPrefix(100) + std::string(12, ' ');
  ExpectErrorMessage([&] { Parse(bytes); },
                     "dir/model.safetensors: header length 100 runs past the end of the file (20 "
                     "bytes): truncated file?");
}

TEST(SafetensorsHeader, InvalidJson) {
  ExpectHeaderError(R"({"a": {"dtype": "F32",)", 0, "header is not well-formed JSON");
  ExpectHeaderError("{} trailing", 0, "header is not well-formed JSON");
  ExpectHeaderError(std::string("{\"\xFF\": 1}"), 0, "header is not well-formed JSON");  // UTF-8
  ExpectHeaderError("", 0, "header is not well-formed JSON");
}

TEST(SafetensorsHeader, HeaderNotAnObject) {
  ExpectHeaderError("[1, 2]", 0, "header must be a JSON object, found array");
  ExpectHeaderError("\"text\"", 0, "header must be a JSON object, found string \"text\"");
}

TEST(SafetensorsHeader, RepeatedKeys) {
  ExpectHeaderError(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                    R"( "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                    2, "header repeats the key 'w'");
  ExpectHeaderError(
      R"({"w": {"dtype": "U8", "shape": [1], "dtype": "F32", "data_offsets": [0, 1]}})", 1,
      "header repeats the field 'dtype' within 'w'");
}

TEST(SafetensorsHeader, EntryNotAnObject) {
  ExpectHeaderError(R"({"w": 3})", 0, "tensor 'w': expected an object, found number 3");
  ExpectHeaderError(R"({"w": ["F32", [1], [0, 4]]})", 4,
                    "tensor 'w': expected an object, found array");
}

TEST(SafetensorsHeader, MissingField) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4,
                    "tensor 'w': missing field 'shape'");
  ExpectHeaderError(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4,
                    "tensor 'w': missing field 'dtype'");
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [1]}})", 4,
                    "tensor 'w': missing field 'data_offsets'");
}

TEST(SafetensorsHeader, ExtraField) {
  ExpectHeaderError(
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "offsets": [0, 4]}})", 4,
      "tensor 'w': unexpected field 'offsets' (expected dtype, shape, data_offsets)");
}

TEST(SafetensorsHeader, DtypeNotAString) {
  ExpectHeaderError(R"({"w": {"dtype": 1, "shape": [1], "data_offsets": [0, 4]}})", 4,
                    "tensor 'w': 'dtype' must be a string, found number 1");
}

TEST(SafetensorsHeader, UnknownDtype) {
  ExpectHeaderError(R"({"w": {"dtype": "F4", "shape": [1], "data_offsets": [0, 1]}})", 1,
                    "tensor 'w': unknown dtype 'F4' (expected F32, BF16, F16, F8_E4M3, F8_E5M2, "
                    "F64, I64, I32, I16, I8, U8 or BOOL)");
}

TEST(SafetensorsHeader, ShapeNotAnArray) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", 16,
                    "tensor 'w': 'shape' must be an array, found number 4");
}

TEST(SafetensorsHeader, NegativeDimension) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})", 0,
                    "tensor 'w': shape entries must be non-negative integers, found number -1");
}

TEST(SafetensorsHeader, NonIntegerDimension) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8,
                    "tensor 'w': shape entries must be non-negative integers, found number 2.5");
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}})", 8,
                    "tensor 'w': shape entries must be non-negative integers, found string \"2\"");
  // Deeply nested values are described by type, never serialized into the message.
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [[[[2]]]], "data_offsets": [0, 8]}})", 8,
                    "tensor 'w': shape entries must be non-negative integers, found array");
}

TEST(SafetensorsHeader, DimensionAboveInt64) {
  ExpectHeaderError(
      R"({"w": {"dtype": "U8", "shape": [9223372036854775808], "data_offsets": [0, 0]}})", 0,
      "tensor 'w': dimension 9223372036854775808 is too large");
}

TEST(SafetensorsHeader, RankAboveTheSupportedMaximum) {
  ExpectHeaderError(
      R"({"w": {"dtype": "U8", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 1]}})", 1,
      "tensor 'w': rank 9 exceeds the supported 8");
}

TEST(SafetensorsHeader, ShapeOverflow) {
  ExpectHeaderError(
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
      "tensor 'w': shape [4294967296, 4294967296] overflows 64-bit sizes");
  // A zero dimension makes the tensor empty, but the others must still have addressable strides.
  ExpectHeaderError(
      R"({"w": {"dtype": "U8", "shape": [0, 4611686018427387904, 4], "data_offsets": [0, 0]}})", 0,
      "tensor 'w': shape [0, 4611686018427387904, 4] overflows 64-bit sizes");
}

TEST(SafetensorsHeader, ByteCountDisagreesWithTheShape) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16,
                    "tensor 'w': data_offsets [0, 12] span 12 bytes but shape [2, 2] of F32 needs "
                    "16");
}

TEST(SafetensorsHeader, BeginAfterEnd) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8,
                    "tensor 'w': data_offsets [8, 4] has begin > end");
}

TEST(SafetensorsHeader, MalformedDataOffsets) {
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 8,
                    "tensor 'w': 'data_offsets' must be [begin, end] with non-negative integers, "
                    "found [0,4,8]");
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 8,
                    "tensor 'w': 'data_offsets' must be [begin, end] with non-negative integers, "
                    "found [-4,0]");
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", 8,
                    "tensor 'w': 'data_offsets' must be [begin, end] with non-negative integers, "
                    "found string \"0-4\"");
}

TEST(SafetensorsHeader, SpanPastTheEndOfTheData) {
  // A truncated file: the header promises 16 bytes, 12 are there.
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12,
                    "tensor 'w': data_offsets end 16 is past the data section (12 bytes): "
                    "truncated file?");
  // A zero-size tensor must still lie within the data section.
  ExpectHeaderError(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [20, 20]}})", 12,
                    "tensor 'w': data_offsets end 20 is past the data section (12 bytes): "
                    "truncated file?");
}

TEST(SafetensorsHeader, OverlappingSpans) {
  ExpectHeaderError(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                    R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                    24, "tensors 'a' [0, 16) and 'b' [8, 24) overlap");
  // Same span twice.
  ExpectHeaderError(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},)"
                    R"( "b": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})",
                    4, "tensors 'a' [0, 4) and 'b' [0, 4) overlap");
}

TEST(SafetensorsHeader, OverlapBehindAZeroSizeTensorOrANestedSpan) {
  // 'z' (empty) sorts between 'a' and 'b'; the overlap of 'b' with 'a' must still be found.
  ExpectHeaderError(R"({"a": {"dtype": "U8", "shape": [100], "data_offsets": [0, 100]},)"
                    R"( "z": {"dtype": "U8", "shape": [0], "data_offsets": [50, 50]},)"
                    R"( "b": {"dtype": "U8", "shape": [60], "data_offsets": [60, 120]}})",
                    120, "tensors 'a' [0, 100) and 'b' [60, 120) overlap");
  // 'b' lies inside 'a'; 'c' starts after 'b' ends but still inside 'a'.
  ExpectHeaderError(R"({"a": {"dtype": "U8", "shape": [100], "data_offsets": [0, 100]},)"
                    R"( "c": {"dtype": "U8", "shape": [10], "data_offsets": [50, 60]}})",
                    100, "tensors 'a' [0, 100) and 'c' [50, 60) overlap");
}

TEST(SafetensorsHeader, MetadataNotAnObject) {
  ExpectHeaderError(R"({"__metadata__": ["format", "pt"]})", 0,
                    "'__metadata__' must be an object of strings, found array");
}

TEST(SafetensorsHeader, MetadataValueNotAString) {
  ExpectHeaderError(R"({"__metadata__": {"format": "pt", "n_layers": 61}})", 0,
                    "'__metadata__' value of 'n_layers' must be a string, found number 61");
  ExpectHeaderError(R"({"__metadata__": {"nested": {"a": "b"}}})", 0,
                    "'__metadata__' value of 'nested' must be a string, found object");
  ExpectHeaderError(R"({"__metadata__": {"none": null}})", 0,
                    "'__metadata__' value of 'none' must be a string, found null null");
}

TEST(SafetensorsHeader, NamesInMessagesStayOnOneLine) {
  // A hostile name with a newline and an escape sequence is printed escaped.
  ExpectHeaderError(R"({"bad\nname\u001b[31m": 3})", 0,
                    "tensor 'bad\\x0aname\\x1b[31m': expected an object, found number 3");
  // A very long name is shortened.
  const std::string long_name(5000, 'n');
  const std::string bytes = SafetensorsBytes("{\"" + long_name + "\": 1}", 0);
  try {
    Parse(bytes);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u);
    EXPECT_NE(std::string(e.what()).find("nnn...': expected an object"), std::string::npos);
  }
}

TEST(SafetensorsHeader, DeeplyNestedJsonIsRejectedWithoutCrashing) {
  // 100k levels of nesting: neither parsing, nor the message, nor destruction may recurse.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExpectHeaderError(deep, 0, "header must be a JSON object, found array");
  ExpectHeaderError(
      "{\"w\": {\"dtype\": \"U8\", \"shape\": " + deep + ", \"data_offsets\": [0, 0]}}", 0,
      "tensor 'w': shape entries must be non-negative integers, found array");
}

}  // namespace
}  // namespace whale
