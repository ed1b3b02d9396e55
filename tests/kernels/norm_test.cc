#include "kernels/norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;

// The F32 kernel's relative error per element: the sum of dim squares (positive terms) errs by
// at most dim·u relative, which the square root halves; the mean, + eps, sqrt, the reciprocal
// and the two products add one rounding each. (dim / 2 + 8)·u bounds it.
double NormTolerance(int64_t dim, float expected) {
  return (static_cast<double>(dim) / 2 + 8) * kF32Epsilon * std::fabs(expected);
}

TEST(RmsNorm, MatchesReferenceForF32AndBf16Weights) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t dim : {1, 2, 31, 32, 33, 127, 128, 129, 2048, 7168})
      for (int64_t n : {1, 3}) {
        std::vector<float> x(n * dim), weight_f32(dim);
        for (float& v : x) v = normal(rng);
        for (float& v : weight_f32) v = 1.0f + 0.1f * normal(rng);
        std::vector<uint16_t> weight_bf16(dim);
        ConvertFromF32(DType::BF16, weight_f32, weight_bf16.data());
        const void* weight =
            dtype == DType::F32 ? static_cast<const void*>(weight_f32.data()) : weight_bf16.data();
        std::vector<float> out(n * dim), expected(n * dim);
        RmsNorm(out, x, n, dim, dtype, weight, 1e-6f);
        RmsNormRef(expected, x, n, dim, dtype, weight, 1e-6f);
        for (int64_t i = 0; i < n * dim; ++i)
          ASSERT_NEAR(out[i], expected[i], NormTolerance(dim, expected[i]))
              << Name(dtype) << " dim=" << dim << " i=" << i;
      }
}

TEST(RmsNorm, NormalizesToUnitRootMeanSquare) {
  // x = c · (1, -1, 1, -1, ...) has mean(x²) = c²; with w = 1 the output is ±1 / sqrt(1 + eps/c²).
  const int64_t dim = 64;
  std::vector<float> x(dim), ones(dim, 1.0f), out(dim);
  for (int64_t i = 0; i < dim; ++i) x[i] = i % 2 ? -3.0f : 3.0f;
  RmsNorm(out, x, 1, dim, DType::F32, ones.data(), 0.0f);
  for (int64_t i = 0; i < dim; ++i) EXPECT_FLOAT_EQ(out[i], i % 2 ? -1.0f : 1.0f);
}

TEST(RmsNorm, EpsDominatesTinyInputs) {
  // mean(x²) = 1e-12 ≪ eps = 1e-6: the output is x / sqrt(eps) ≈ x · 1000.
  const int64_t dim = 33;
  std::vector<float> x(dim, 1e-6f), ones(dim, 1.0f), out(dim), zeros(dim, 0.0f);
  RmsNorm(out, x, 1, dim, DType::F32, ones.data(), 1e-6f);
  for (float v : out) EXPECT_NEAR(v, 1e-6 / std::sqrt(1e-6 + 1e-12), 1e-9);
  RmsNorm(out, zeros, 1, dim, DType::F32, ones.data(), 1e-6f);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(RmsNorm, InPlaceEqualsOutOfPlace) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 3, dim = 129;
  std::vector<float> x(n * dim), weight(dim), out(n * dim);
  for (float& v : x) v = normal(rng);
  for (float& v : weight) v = normal(rng);
  RmsNorm(out, x, n, dim, DType::F32, weight.data(), 1e-6f);
  RmsNorm(x, x, n, dim, DType::F32, weight.data(), 1e-6f);
  for (int64_t i = 0; i < n * dim; ++i) EXPECT_EQ(x[i], out[i]);
}

TEST(RmsNorm, RejectsBadArguments) {
  std::vector<float> x(8), out(8), weight(4);
  EXPECT_THROW(RmsNorm(out, x, 2, 4, DType::F16, weight.data(), 1e-6f), Error);
  EXPECT_THROW(RmsNorm(out, x, 2, 4, DType::F32, nullptr, 1e-6f), Error);
  EXPECT_THROW(RmsNorm(out, x, 3, 4, DType::F32, weight.data(), 1e-6f), Error);
  EXPECT_THROW(RmsNorm(std::span<float>(out).first(4), x, 2, 4, DType::F32, weight.data(), 1e-6f),
               Error);
  EXPECT_THROW(RmsNorm(out, x, 8, 0, DType::F32, weight.data(), 1e-6f), Error);
}

}  // namespace
}  // namespace whale
