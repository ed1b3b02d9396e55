// FP8 recipe emulation: the fast quantizer equals the PyTorch-exact reference bit for bit; the
// FP8 linear layer is exactly the F32 products of the recipe's quantized operands.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/gemm.h"
#include "tensor/dtype.h"
#include "train/fp8_recipe.h"
#include "train/ops_linear.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

// Values spread over 2⁻²⁴..2⁶ in magnitude, both signs, some zeros: every tile mixes normal and
// subnormal e4m3 results and exact ties occur.
std::vector<float> WideRange(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> exponent(-24.0f, 6.0f);
  std::uniform_int_distribution<int> coin(0, 15);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) {
    const int c = coin(rng);
    x = c == 0 ? 0.0f : std::exp2(exponent(rng)) * (c % 2 ? -1.0f : 1.0f);
    if (c == 1) x = std::round(x * 16.0f) / 16.0f;  // many values on the e4m3 grid or its ties
  }
  return v;
}

bool SameBits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

TEST(OpsFp8, QuantizerEqualsReferenceBitForBit) {
  std::mt19937 rng(18);
  ThreadPool pool(2);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {31, 129}, {129, 33}, {300, 257}})
    for (auto [tr, tc] : {std::pair<int64_t, int64_t>{1, 128}, {128, 1}, {128, 128}, {3, 5}}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << " tile " << tr << "x" << tc);
      std::vector<float> x = WideRange(rows * cols, rng);
      std::vector<float> fast(x.size()), ref(x.size());
      Fp8QuantizeDequantize(fast, x, rows, cols, tr, tc, &pool);
      Fp8QuantizeDequantizeRef(ref, x, rows, cols, tr, tc);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_TRUE(SameBits(fast[i], ref[i]))
            << i << ": " << x[i] << " -> " << fast[i] << " vs " << ref[i];
      // In place gives the same.
      Fp8QuantizeDequantize(x, x, rows, cols, tr, tc, nullptr);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(SameBits(x[i], ref[i])) << i;
    }
}

TEST(OpsFp8, TileScalingAndSpecialValues) {
  // One 1×128 tile: amax 3 → scale 3/448. An element that is amax comes back as 448·scale; an
  // element equal to half-way between two e4m3 steps rounds to even; relative error of normal
  // results at most 2⁻⁴ (3 mantissa bits).
  std::vector<float> x(128);
  for (int i = 0; i < 128; ++i) x[i] = 3.0f * std::sin(0.37f * static_cast<float>(i) + 0.1f);
  x[5] = -3.0f;
  std::vector<float> q(128);
  Fp8QuantizeDequantize(q, x, 1, 128, 1, 128);
  const float scale = 3.0f / kF8E4M3Max;
  EXPECT_EQ(q[5], -448.0f * scale);
  for (int i = 0; i < 128; ++i)
    if (std::fabs(x[i]) / scale >= 0x1p-6f) {
      EXPECT_LE(std::fabs(q[i] - x[i]), std::fabs(x[i]) * 0x1p-4f * 1.0001f) << i;
    }
  // A zero tile stays zero; a NaN poisons only its own tile (as the reference does).
  std::vector<float> y = {0, 0, 1, std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> qy(4), ry(4);
  Fp8QuantizeDequantize(qy, y, 2, 2, 1, 2);
  Fp8QuantizeDequantizeRef(ry, y, 2, 2, 1, 2);
  EXPECT_EQ(qy[0], 0.0f);
  EXPECT_EQ(qy[1], 0.0f);
  // The whole second tile is NaN (its scale is), in both; NaN payloads may differ.
  EXPECT_TRUE(std::isnan(qy[2]) && std::isnan(qy[3]));
  EXPECT_TRUE(std::isnan(ry[2]) && std::isnan(ry[3]));
  EXPECT_THROW(Fp8QuantizeDequantize(qy, y, 2, 2, 0, 2), Error);
  EXPECT_THROW(Fp8QuantizeDequantize(qy, y, 2, 3, 1, 2), Error);
}

std::vector<float> Quantized(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t tr,
                             int64_t tc) {
  std::vector<float> q(x.size());
  Fp8QuantizeDequantizeRef(q, x, rows, cols, tr, tc);
  return q;
}

TEST(OpsFp8, LinearIsTheRecipe) {
  std::mt19937 rng(19);
  ThreadPool pool(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto [n, in, out] : {std::tuple<int64_t, int64_t, int64_t>{1, 33, 7}, {129, 257, 130}}) {
    SCOPED_TRACE(testing::Message() << n << "x" << in << "->" << out);
    auto random = [&](int64_t count) {
      std::vector<float> v(count);
      for (float& f : v) f = normal(rng);
      return v;
    };
    const std::vector<float> x = random(n * in), w = random(out * in), dy = random(n * out);
    LinearWorkspace ws;
    std::vector<float> y(n * out), dx(n * in, 0.0f), dw(out * in, 1.0f);
    LinearForward(LinearPrecision::kFp8, y, x, w, n, in, out, ws, &pool);
    LinearBackward(LinearPrecision::kFp8, dx, dw, dy, x, w, n, in, out, false, ws, &pool);
    std::vector<float> ey(n * out), edx(n * in), edw(out * in, 1.0f);
    Gemm(ey, Quantized(x, n, in, 1, 128), Quantized(w, out, in, 128, 128), n, out, in, Trans::kNo,
         Trans::kYes, false, nullptr);
    Gemm(edx, Quantized(dy, n, out, 1, 128), Quantized(w, out, in, 128, 128), n, in, out,
         Trans::kNo, Trans::kNo, false, nullptr);
    Gemm(edw, Quantized(dy, n, out, 128, 1), Quantized(x, n, in, 128, 1), out, in, n, Trans::kYes,
         Trans::kNo, true, nullptr);
    EXPECT_EQ(y, ey);
    EXPECT_EQ(dx, edx);
    EXPECT_EQ(dw, edw);
    // And close to F32: each product loses at most ~2·2⁻⁴ relative per term; on random data the
    // error averages out to a few percent of the output's scale (√in for unit normals).
    std::vector<float> y32(n * out);
    LinearForward(LinearPrecision::kF32, y32, x, w, n, in, out, ws, &pool);
    double err = 0, norm = 0;
    for (int64_t i = 0; i < n * out; ++i) {
      err += (y[i] - y32[i]) * (y[i] - y32[i]);
      norm += y32[i] * y32[i];
    }
    EXPECT_LT(std::sqrt(err / norm), 0.08);
    EXPECT_GT(std::sqrt(err / norm), 1e-4);  // the quantization did happen
  }
}

}  // namespace
}  // namespace whale
