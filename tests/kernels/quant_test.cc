// whale's int8 / int4 block formats (kernels/quant.h): layout, error bounds, activations.
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "tensor/dtype.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr int64_t kSizes[] = {1, 31, 32, 33, 127, 129, 300};
constexpr QuantFormat kFormats[] = {QuantFormat::kInt8, QuantFormat::kInt4};

// Weights whose groups span very different magnitudes, with an all-zero group and exact zeros.
std::vector<float> RandomWeights(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 6);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < QuantGroups(cols); ++g) {
      const float magnitude = std::ldexp(1.0f, exponent(rng));
      const bool zero_group = (r + g) % 7 == 3;
      for (int64_t k = g * kQuantGroup; k < std::min(cols, (g + 1) * kQuantGroup); ++k)
        w[r * cols + k] = zero_group || k % 11 == 5 ? 0.0f : normal(rng) * magnitude;
    }
  return w;
}

struct Quantized {
  std::vector<uint8_t> stored;
  std::vector<float> values;  // dequantized
  QuantFormat format;
  int64_t cols;
  // The code byte of (row, col) and the F16 scale of (row, group), read through the format's
  // index functions (InterleavedRowsLayout pins those down by hand).
  uint8_t code_byte(int64_t r, int64_t c) const {
    bool high = false;
    return stored[QuantCodeIndex(format, cols, r, c, &high)];
  }
  float scale(int64_t r, int64_t g) const {
    const int64_t at = QuantScaleIndex(format, cols, r, g);
    return F16ToF32(static_cast<uint16_t>(stored[at] | stored[at + 1] << 8));
  }
};

Quantized QuantizeAndBack(QuantFormat format, const std::vector<float>& w, int64_t rows,
                          int64_t cols) {
  Quantized q{std::vector<uint8_t>(QuantStoredBytes(format, rows, cols)),
              std::vector<float>(rows * cols), format, cols};
  QuantizeRows(format, q.stored, w, rows, cols);
  DequantizeCodes(format, q.values, q.stored.data(), cols, 0, rows);
  return q;
}

TEST(QuantFormat, SizesAndGroups) {
  EXPECT_EQ(QuantGroups(1), 1);
  EXPECT_EQ(QuantGroups(32), 1);
  EXPECT_EQ(QuantGroups(33), 2);
  EXPECT_EQ(QuantRowBlocks(1), 1);
  EXPECT_EQ(QuantRowBlocks(8), 1);
  EXPECT_EQ(QuantRowBlocks(9), 2);
  // 9 rows x 200 columns: 2 row blocks x (2 quads of scales + 7 groups of codes).
  EXPECT_EQ(QuantStoredBytes(QuantFormat::kInt8, 9, 200), 2 * (2 * 64 + 7 * 256));
  EXPECT_EQ(QuantStoredBytes(QuantFormat::kInt4, 9, 200), 2 * (2 * 64 + 7 * 128));
}

// The storage order written out by hand (kernels/quant.h STORAGE): 11 rows (a partial second
// block) x 168 columns (6 groups, the last partial: a full quad and a partial one), each weight an
// exact code and every group's scale 1.
TEST(QuantFormat, InterleavedRowsLayout) {
  const int64_t rows = 11, cols = 168, groups = 6;
  std::vector<float> w8(rows * cols), w4(rows * cols);
  const auto code8 = [](int64_t r, int64_t c) {
    return c % 32 == 0 ? 127 : static_cast<int>((r * 37 + c * 11) % 255) - 127;
  };
  const auto code4 = [](int64_t r, int64_t c) {
    return c % 32 == 0 ? -8 : static_cast<int>((r * 5 + c * 3) % 15) - 7;
  };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      w8[r * cols + c] = static_cast<float>(code8(r, c));
      w4[r * cols + c] = static_cast<float>(code4(r, c));
    }
  const Quantized q8 = QuantizeAndBack(QuantFormat::kInt8, w8, rows, cols);
  const Quantized q4 = QuantizeAndBack(QuantFormat::kInt4, w4, rows, cols);
  const int64_t block8 = 2 * 64 + groups * 256, block4 = 2 * 64 + groups * 128;
  ASSERT_EQ(q8.stored.size(), static_cast<size_t>(2 * block8));
  ASSERT_EQ(q4.stored.size(), static_cast<size_t>(2 * block4));
  const auto f16 = [](const std::vector<uint8_t>& bytes, int64_t at) {
    return F16ToF32(static_cast<uint16_t>(bytes[at] | bytes[at + 1] << 8));
  };
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t g = 0; g < 8; ++g) {  // groups 6 and 7: the unused scales of the last quad
      const int64_t quad8 = (r / 8) * block8 + (g / 4) * (64 + 4 * 256);
      const int64_t quad4 = (r / 8) * block4 + (g / 4) * (64 + 4 * 128);
      const float scale = r < rows && g < groups ? 1.0f : 0.0f;
      EXPECT_EQ(f16(q8.stored, quad8 + (g % 4) * 16 + (r % 8) * 2), scale) << r << " " << g;
      EXPECT_EQ(f16(q4.stored, quad4 + (g % 4) * 16 + (r % 8) * 2), scale) << r << " " << g;
      if (g >= groups) continue;
      for (int64_t i = 0; i < 32; ++i) {
        const int64_t c = g * 32 + i;
        const bool real = r < rows && c < cols;
        const int64_t at8 = quad8 + 64 + (g % 4) * 256 + (i / 4) * 32 + (r % 8) * 4 + i % 4;
        EXPECT_EQ(static_cast<int8_t>(q8.stored[at8]), real ? code8(r, c) : 0) << r << " " << c;
        const int64_t byte = i % 16;
        const uint8_t b4 =
            q4.stored[quad4 + 64 + (g % 4) * 128 + (byte / 4) * 32 + (r % 8) * 4 + byte % 4];
        const int expect4 = r >= rows ? 0 : c >= cols ? 8 : code4(r, c) + 8;
        EXPECT_EQ(i < 16 ? (b4 & 0x0F) : (b4 >> 4), expect4) << r << " " << c;
      }
    }
  for (int64_t k = 0; k < rows * cols; ++k) {
    EXPECT_EQ(q8.values[k], w8[k]) << k;
    EXPECT_EQ(q4.values[k], w4[k]) << k;
  }
}

// Every element's error is within the bound the format documents, derived from its group's
// stored scale s: int8 |e| <= s / 2; int4 |e| <= |s| / 2 except codes clamped to +7 (|e| <= |s|).
// The scale itself is within one F16 ulp above amax / 127 (int8) or |m| / 8 (int4).
TEST(QuantFormat, RoundTripErrorWithinScaleBound) {
  std::mt19937 rng(5);
  for (QuantFormat format : kFormats)
    for (int64_t cols : kSizes) {
      const int64_t rows = 3;
      const std::vector<float> w = RandomWeights(rows, cols, rng);
      const Quantized q = QuantizeAndBack(format, w, rows, cols);
      const int64_t groups = QuantGroups(cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < groups; ++g) {
          const double s = q.scale(r, g);
          double amax = 0.0;
          for (int64_t k = g * kQuantGroup; k < std::min(cols, (g + 1) * kQuantGroup); ++k)
            amax = std::max(amax, std::abs(static_cast<double>(w[r * cols + k])));
          const double levels = format == QuantFormat::kInt8 ? 127.0 : 8.0;
          SCOPED_TRACE(Cat(QuantFormatName(format), " cols ", cols, " row ", r, " group ", g));
          if (amax == 0.0) {
            EXPECT_EQ(s, 0.0);
          } else {
            EXPECT_GE(std::abs(s) * levels, amax);
            // Above F16's normal range an ulp is 2^-10 relative; subnormal scales are
            // 2^-24 absolute.
            EXPECT_LE(std::abs(s), amax / levels * (1 + 0x1p-9) + 0x1p-23);
          }
          for (int64_t k = g * kQuantGroup; k < std::min(cols, (g + 1) * kQuantGroup); ++k) {
            const double error =
                std::abs(static_cast<double>(q.values[r * cols + k]) - w[r * cols + k]);
            const double bound = format == QuantFormat::kInt8 || w[r * cols + k] / s <= 7.5
                                     ? std::abs(s) / 2
                                     : std::abs(s);
            EXPECT_LE(error, bound) << "column " << k;
          }
        }
    }
}

// A group that is exactly representable survives unchanged, and the bytes have the documented
// layout (one row: its 4-byte pieces 32 bytes apart): int8 code i at (i / 4) * 32 + i % 4; int4
// byte i = code(i) | code(i + 16) << 4 at (i / 4) * 32 + i % 4, code = value + 8.
TEST(QuantFormat, ExactGroupsAndNibbleOrder) {
  std::vector<float> w8(32), w4(32);
  for (int i = 0; i < 32; ++i) {
    w8[i] = static_cast<float>(i * 8 - 127 + (i == 31 ? 2 : 0));  // -127 .. 121, 127 last
    w4[i] = static_cast<float>(i % 16 - 8) * 0.5f;                // m = -4 -> scale 0.5
  }
  w8[31] = 127.0f;
  const Quantized q8 = QuantizeAndBack(QuantFormat::kInt8, w8, 1, 32);
  EXPECT_EQ(F16ToF32(static_cast<uint16_t>(q8.stored[0] | q8.stored[1] << 8)), 1.0f);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(static_cast<int8_t>(q8.stored[64 + (i / 4) * 32 + i % 4]), static_cast<int>(w8[i]))
        << i;
    EXPECT_EQ(q8.values[i], w8[i]) << i;
  }
  const Quantized q4 = QuantizeAndBack(QuantFormat::kInt4, w4, 1, 32);
  EXPECT_EQ(q4.scale(0, 0), 0.5f);
  for (int i = 0; i < 16; ++i) {
    const int low = i % 16, high = (i + 16) % 16;  // codes: value / 0.5 + 8
    EXPECT_EQ(q4.stored[64 + (i / 4) * 32 + i % 4], low | high << 4) << i;
  }
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q4.values[i], w4[i]) << i;
  // A positive extreme gives a negative scale: the extreme itself is the code 0.
  const Quantized neg = QuantizeAndBack(QuantFormat::kInt4, {8.0f, -1.0f, 3.0f}, 1, 3);
  EXPECT_EQ(neg.scale(0, 0), -1.0f);
  EXPECT_EQ(neg.code_byte(0, 0) & 0x0F, 0);
  EXPECT_EQ(neg.values[0], 8.0f);
  EXPECT_EQ(neg.values[1], -1.0f);
  EXPECT_EQ(neg.values[2], 3.0f);
}

TEST(QuantFormat, BadWeightsAreErrors) {
  std::vector<float> w(2 * 40, 1.0f);
  w[40 + 5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> stored(QuantStoredBytes(QuantFormat::kInt8, 2, 40));
  try {
    QuantizeRows(QuantFormat::kInt8, stored, w, 2, 40);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 column 5"), std::string::npos) << e.what();
  }
  w[45] = 1e10f;  // scale 1e10 / 127 > 65504
  try {
    QuantizeRows(QuantFormat::kInt8, stored, w, 2, 40);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F16 range"), std::string::npos) << e.what();
  }
}

// Activation codes: |q · d - x| <= d / 2 (plus F32 rounding of x · 127 / amax), |q| <= 127,
// sums match, padding is zero, an all-zero group has d = 0 and a NaN makes d NaN.
TEST(QuantFormat, ActivationRowBounds) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t cols : kSizes) {
    std::vector<float> x(cols);
    for (float& v : x) v = normal(rng);
    if (cols > 40) {
      for (int k = 32; k < 64 && k < cols; ++k) x[k] = 0.0f;
    }
    const int64_t groups = QuantGroups(cols);
    std::vector<int8_t> q(groups * kQuantGroup, 99);
    std::vector<float> d(groups);
    std::vector<int32_t> sum(groups);
    QuantizeActivationRow(q.data(), d.data(), sum.data(), x.data(), cols);
    for (int64_t g = 0; g < groups; ++g) {
      int32_t s = 0;
      for (int64_t k = g * kQuantGroup; k < (g + 1) * kQuantGroup; ++k) {
        s += q[k];
        EXPECT_GE(q[k], -127);
        if (k >= cols) {
          EXPECT_EQ(q[k], 0);
          continue;
        }
        // x · (127 / amax) carries two F32 roundings (relative 2^-23 of at most 127).
        EXPECT_LE(std::abs(q[k] * static_cast<double>(d[g]) - x[k]),
                  d[g] * (0.5 + 127 * 0x1p-22) + 1e-30)
            << "cols " << cols << " k " << k;
      }
      EXPECT_EQ(sum[g], s);
      if (cols > 40 && g == 1) {
        EXPECT_EQ(d[g], 0.0f);
      }
    }
  }
  std::vector<float> x(40, 1.0f);
  x[35] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int8_t> q(64);
  std::vector<float> d(2);
  std::vector<int32_t> sum(2);
  QuantizeActivationRow(q.data(), d.data(), sum.data(), x.data(), 40);
  EXPECT_EQ(d[0], 1.0f / 127.0f);
  EXPECT_TRUE(std::isnan(d[1]));
}

}  // namespace
}  // namespace whale
