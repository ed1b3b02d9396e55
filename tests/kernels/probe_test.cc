#include "kernels/probe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "util/aligned_buffer.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

// The XOR of every 8-byte word, one at a time: what ReadFourStreams' four vector streams fold to.
uint64_t XorOfWords(const uint8_t* p, size_t bytes) {
  uint64_t out = 0;
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    out ^= word;
  }
  return out;
}

TEST(ReadFourStreams, FoldsEveryWordOfEveryQuarter) {
  std::mt19937_64 rng(5);
  // One 256-byte step (a 64-byte vector per stream), odd step counts, and a probe-sized piece.
  for (size_t bytes :
       {size_t{256}, size_t{512}, size_t{256 * 7}, size_t{256 * 129}, size_t{8} << 20}) {
    SCOPED_TRACE(bytes);
    AlignedBuffer buffer(bytes);
    auto* p = static_cast<uint8_t*>(buffer.data());
    for (size_t i = 0; i < bytes; i += 8) {
      const uint64_t word = rng();
      std::memcpy(p + i, &word, sizeof(word));
    }
    EXPECT_EQ(ReadFourStreams(p, bytes), XorOfWords(p, bytes));
    // A single flipped bit anywhere, the last word of the last quarter included, shows.
    for (size_t at : {size_t{0}, bytes / 4 + 3, bytes / 2 + 17, bytes - 1}) {
      p[at] ^= 0x10;
      EXPECT_EQ(ReadFourStreams(p, bytes), XorOfWords(p, bytes)) << "byte " << at;
    }
  }
}

TEST(ReadFourStreams, RejectsAMisalignedStartOrAPartialStep) {
  AlignedBuffer buffer(1024);
  const auto* p = static_cast<const uint8_t*>(buffer.data());
  for (auto [offset, bytes] : {std::pair<size_t, size_t>{8, 256}, {0, 255}, {0, 320}}) {
    SCOPED_TRACE(offset);
    try {
      ReadFourStreams(p + offset, bytes);
      FAIL() << bytes << " bytes at offset " << offset << " were accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bytes) + " bytes"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(ReadFourStreams(p, 0), 0u);
}

TEST(MeasureReadBandwidth, ReportsAPositiveRateAndRejectsNoRepeats) {
  ThreadPool pool(2);
  for (ThreadPool* threads : {static_cast<ThreadPool*>(nullptr), &pool}) {
    const double gbps = MeasureReadBandwidth(threads, {size_t{16} << 20, 1});
    EXPECT_TRUE(std::isfinite(gbps));
    EXPECT_GT(gbps, 0.0);
  }
  try {
    MeasureReadBandwidth(nullptr, {size_t{16} << 20, 0});
    FAIL() << "repeats = 0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repeats = 0"), std::string::npos) << e.what();
  }
}

TEST(MeasureMatMulPeak, RejectsAnUnmeasuredDtypeByName) {
  try {
    MeasureMatMulPeak(DType::I32, nullptr, {4, 8, 8, 1});
    FAIL() << "I32 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(Name(DType::I32)), std::string::npos) << e.what();
  }
  EXPECT_GT(MeasureMatMulPeak(DType::I8, nullptr, {4, 8, 40, 1}), 0.0);
}

}  // namespace
}  // namespace whale
