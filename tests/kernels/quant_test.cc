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
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales;
  std::vector<float> values;  // dequantized
};

Quantized QuantizeAndBack(QuantFormat format, const std::vector<float>& w, int64_t rows,
                          int64_t cols) {
  Quantized q{std::vector<uint8_t>(rows * QuantRowBytes(format, cols)),
              std::vector<uint16_t>(rows * QuantGroups(cols)), std::vector<float>(rows * cols)};
  QuantizeRows(format, q.codes, q.scales, w, rows, cols);
  DequantizeCodes(format, q.values, q.codes.data(), q.scales.data(), rows, cols);
  return q;
}

TEST(QuantFormat, RowBytesAndGroups) {
  EXPECT_EQ(QuantGroups(1), 1);
  EXPECT_EQ(QuantGroups(32), 1);
  EXPECT_EQ(QuantGroups(33), 2);
  EXPECT_EQ(QuantRowBytes(QuantFormat::kInt8, 200), 224);
  EXPECT_EQ(QuantRowBytes(QuantFormat::kInt4, 200), 112);
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
          const double s = F16ToF32(q.scales[r * groups + g]);
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
// layout: int8 codes in order; int4 byte i = code(i) | code(i + 16) << 4, code = value + 8.
TEST(QuantFormat, ExactGroupsAndNibbleOrder) {
  std::vector<float> w8(32), w4(32);
  for (int i = 0; i < 32; ++i) {
    w8[i] = static_cast<float>(i * 8 - 127 + (i == 31 ? 2 : 0));  // -127 .. 121, 127 last
    w4[i] = static_cast<float>(i % 16 - 8) * 0.5f;                // m = -4 -> scale 0.5
  }
  w8[31] = 127.0f;
  const Quantized q8 = QuantizeAndBack(QuantFormat::kInt8, w8, 1, 32);
  EXPECT_EQ(F16ToF32(q8.scales[0]), 1.0f);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(static_cast<int8_t>(q8.codes[i]), static_cast<int>(w8[i])) << i;
    EXPECT_EQ(q8.values[i], w8[i]) << i;
  }
  const Quantized q4 = QuantizeAndBack(QuantFormat::kInt4, w4, 1, 32);
  EXPECT_EQ(F16ToF32(q4.scales[0]), 0.5f);
  for (int i = 0; i < 16; ++i) {
    const int low = i % 16, high = (i + 16) % 16;  // codes: value / 0.5 + 8
    EXPECT_EQ(q4.codes[i], low | high << 4) << i;
  }
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q4.values[i], w4[i]) << i;
  // A positive extreme gives a negative scale: the extreme itself is the code 0.
  const Quantized neg = QuantizeAndBack(QuantFormat::kInt4, {8.0f, -1.0f, 3.0f}, 1, 3);
  EXPECT_EQ(F16ToF32(neg.scales[0]), -1.0f);
  EXPECT_EQ(neg.codes[0] & 0x0F, 0);
  EXPECT_EQ(neg.values[0], 8.0f);
  EXPECT_EQ(neg.values[1], -1.0f);
  EXPECT_EQ(neg.values[2], 3.0f);
}

// Stored rows are padded to whole groups with codes that dequantize to 0.
TEST(QuantFormat, PaddingIsZero) {
  std::vector<float> w(2 * 33, 1.5f);
  const Quantized q8 = QuantizeAndBack(QuantFormat::kInt8, w, 2, 33);
  ASSERT_EQ(q8.codes.size(), 128u);
  for (int r = 0; r < 2; ++r)
    for (int k = 33; k < 64; ++k) EXPECT_EQ(q8.codes[r * 64 + k], 0) << r << " " << k;
  const Quantized q4 = QuantizeAndBack(QuantFormat::kInt4, w, 2, 33);
  ASSERT_EQ(q4.codes.size(), 64u);
  for (int r = 0; r < 2; ++r) {
    // Second group: element 32 is real (byte 16's low nibble), 33..63 padding (code 8).
    EXPECT_EQ(q4.codes[r * 32 + 16] >> 4, 8);
    for (int k = 17; k < 32; ++k) EXPECT_EQ(q4.codes[r * 32 + k], 0x88) << r << " " << k;
  }
}

TEST(QuantFormat, BadWeightsAreErrors) {
  std::vector<float> w(2 * 40, 1.0f);
  w[40 + 5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> codes(2 * 64);
  std::vector<uint16_t> scales(2 * 2);
  try {
    QuantizeRows(QuantFormat::kInt8, codes, scales, w, 2, 40);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 column 5"), std::string::npos) << e.what();
  }
  w[45] = 1e10f;  // scale 1e10 / 127 > 65504
  try {
    QuantizeRows(QuantFormat::kInt8, codes, scales, w, 2, 40);
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
