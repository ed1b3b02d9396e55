// whale's BF16 / F16 conversions against PyTorch's, from the fixture written by
// tools/fixtures/dtype_fixtures.py (torch 1.13; see its docstring for the file layout). PyTorch
// 1.13 has no float8, so F8_E4M3 is checked against the format definition in dtype_test.cc and
// follows c10/util/Float8_e4m3fn.h (see the comment on F32ToF8E4M3 in dtype.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dtype_reference.h"
#include "tensor/dtype.h"

namespace whale {
namespace {

using testing::BitsOf;
using testing::FloatFromBits;

constexpr const char* kFixture = WHALE_TEST_DATA "/dtype/torch_casts.bin";

struct Row {
  uint32_t f32;
  uint16_t bf16_scalar, bf16_one, bf16_bulk;  // torch.tensor(x, dtype) / 1-element .to / bulk .to
  uint16_t f16_scalar, f16_one, f16_bulk;
};

struct Fixture {
  nlohmann::json header;
  std::vector<Row> rows;
};

uint32_t LoadLE(const uint8_t* p, int n_bytes) {
  uint32_t v = 0;
  for (int i = n_bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

Fixture Load() {
  std::ifstream in(kFixture, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot open ") + kFixture);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t newline = bytes.find('\n');
  if (newline == std::string::npos) throw std::runtime_error("fixture has no header line");
  Fixture fixture;
  fixture.header = nlohmann::json::parse(bytes.substr(0, newline));
  const size_t n = fixture.header.at("rows").get<size_t>();
  const size_t row_bytes = fixture.header.at("row_bytes").get<size_t>();
  if (row_bytes != 16 || bytes.size() != newline + 1 + n * row_bytes)
    throw std::runtime_error("fixture size does not match its header");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + newline + 1;
  for (size_t i = 0; i < n; ++i, p += row_bytes) {
    Row row;
    row.f32 = LoadLE(p, 4);
    uint16_t* fields[] = {&row.bf16_scalar, &row.bf16_one, &row.bf16_bulk,
                          &row.f16_scalar,  &row.f16_one,  &row.f16_bulk};
    for (int f = 0; f < 6; ++f) *fields[f] = static_cast<uint16_t>(LoadLE(p + 4 + 2 * f, 2));
    fixture.rows.push_back(row);
  }
  return fixture;
}

const Fixture& TheFixture() {
  static const Fixture fixture = Load();
  return fixture;
}

std::string Hex(uint64_t v) {
  std::ostringstream out;
  out << std::hex;
  out.width(16);
  out.fill('0');
  out << v;
  return out.str();
}

TEST(DTypeTorch, FixtureHeader) {
  const auto& header = TheFixture().header;
  EXPECT_EQ(header.at("format"), "whale-dtype-fixture");
  EXPECT_EQ(header.at("version"), 1);
  EXPECT_EQ(header.at("digest"), "fnv1a64");
  EXPECT_GT(TheFixture().rows.size(), 1000u);
}

// c10::BFloat16 (the scalar constructor) for every row, NaNs included. PyTorch's CPU cast kernel
// (.to(torch.bfloat16), for 1 element or many) agrees except on NaN, which it writes as 0xFFFF:
// its SIMD conversion blends NaN lanes with all-ones. whale keeps c10's canonical 0x7FC0.
TEST(DTypeTorch, Bf16MatchesPyTorch) {
  int n_nan = 0;
  for (const Row& row : TheFixture().rows) {
    const float x = FloatFromBits(row.f32);
    const uint16_t got = F32ToBf16(x);
    ASSERT_EQ(got, row.bf16_scalar) << "input 0x" << std::hex << row.f32;
    if (std::isnan(x)) {
      ++n_nan;
      EXPECT_EQ(row.bf16_one, 0xFFFF) << "input 0x" << std::hex << row.f32;
      EXPECT_EQ(row.bf16_bulk, 0xFFFF) << "input 0x" << std::hex << row.f32;
    } else {
      ASSERT_EQ(got, row.bf16_one) << "input 0x" << std::hex << row.f32;
      ASSERT_EQ(got, row.bf16_bulk) << "input 0x" << std::hex << row.f32;
    }
  }
  EXPECT_GT(n_nan, 10);  // the fixture does exercise NaNs of both signs with payloads
}

// Every PyTorch path gives the same F16 bits, NaN (sign | 0x7E00) included.
TEST(DTypeTorch, F16MatchesPyTorch) {
  for (const Row& row : TheFixture().rows) {
    const uint16_t got = F32ToF16(FloatFromBits(row.f32));
    ASSERT_EQ(got, row.f16_scalar) << "input 0x" << std::hex << row.f32;
    ASSERT_EQ(got, row.f16_one) << "input 0x" << std::hex << row.f32;
    ASSERT_EQ(got, row.f16_bulk) << "input 0x" << std::hex << row.f32;
  }
}

// The ~190k inputs around every rounding boundary, rebuilt from the rule, digested like the
// fixture.
TEST(DTypeTorch, MidpointDigestsMatchPyTorch) {
  const auto& digests = TheFixture().header.at("digests");
  const struct {
    const char* key;
    const testing::FloatFormat& format;
    uint16_t (*encode)(float);
  } cases[] = {{"bf16", testing::kBf16Format, F32ToBf16}, {"f16", testing::kF16Format, F32ToF16}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    const std::vector<uint32_t> inputs = testing::MidpointInputs(c.format);
    ASSERT_EQ(inputs.size(), digests.at(std::string(c.key) + "_midpoints_count").get<size_t>());
    testing::Fnv1a64 digest;
    for (uint32_t bits : inputs) digest.Add(c.encode(FloatFromBits(bits)), 2);
    EXPECT_EQ(Hex(digest.value()), digests.at(std::string(c.key) + "_midpoints").get<std::string>())
        << "whale and torch round some boundary input differently; dtype_test.cc's "
           "RoundsToNearestEvenAtEveryMidpoint names the inputs if whale is the one that is off";
  }
}

// Decoding all 65536 codes, NaN payloads included, bit for bit.
TEST(DTypeTorch, DecodeDigestsMatchPyTorch) {
  const auto& digests = TheFixture().header.at("digests");
  testing::Fnv1a64 bf16, f16;
  for (uint32_t code = 0; code < 65536; ++code) {
    bf16.Add(BitsOf(Bf16ToF32(static_cast<uint16_t>(code))), 4);
    f16.Add(BitsOf(F16ToF32(static_cast<uint16_t>(code))), 4);
  }
  EXPECT_EQ(Hex(bf16.value()), digests.at("bf16_decode").get<std::string>());
  EXPECT_EQ(Hex(f16.value()), digests.at("f16_decode").get<std::string>());
}

}  // namespace
}  // namespace whale
