#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;

// DeepSeek-V3 / R1 and V2-Lite rope_scaling: rope_dim 64, theta 1e4, factor 40, 4096 original
// positions, beta_fast 32, beta_slow 1.
std::vector<float> V3Frequencies() {
  return YarnInverseFrequencies(64, 10000.0, 40.0, 4096, 32.0, 1.0);
}

// Spec 4.5's table of ω_i (reference form, float32), printed there to about 7 significant
// digits; the tolerance is half a unit of the 7th digit plus an F32 ulp.
TEST(YarnInverseFrequencies, MatchesTheSpecTableForV3) {
  const std::vector<float> omega = V3Frequencies();
  ASSERT_EQ(omega.size(), 32u);
  const std::pair<int, double> table[] = {
      {0, 1.000000000},   {1, 0.7498942},     {2, 0.5623413},     {4, 0.3162278},
      {8, 0.1000000015},  {10, 0.05623413},   {11, 0.03900693},   {12, 0.02687936},
      {16, 0.005500000},  {20, 0.0007905694}, {22, 0.0001778279}, {23, 3.333804e-05},
      {31, 3.333804e-06},
  };
  for (auto [i, expected] : table)
    EXPECT_NEAR(omega[i], expected, expected * (5e-7 + 2 * kF32Epsilon)) << "i = " << i;
}

TEST(YarnInverseFrequencies, BlendsBetweenTheCorrectionRange) {
  // low = 10, high = 23: indices <= 10 keep 1/base^(2i/d); >= 23 are divided by 40.
  const std::vector<float> scaled = V3Frequencies();
  const std::vector<float> plain = YarnInverseFrequencies(64, 10000.0, 1.0, 4096, 32.0, 1.0);
  for (int i = 0; i <= 10; ++i) EXPECT_EQ(scaled[i], plain[i]) << i;
  for (int i = 23; i < 32; ++i) EXPECT_FLOAT_EQ(scaled[i], plain[i] / 40.0f) << i;
  for (int i = 11; i < 23; ++i) {
    EXPECT_LT(scaled[i], plain[i]) << i;
    EXPECT_GT(scaled[i], plain[i] / 40.0f) << i;
  }
}

// Against the all-double computation: the float32 pipeline rounds the exponent, the power, the
// reciprocal, the ramp (a difference and a quotient), 1 − smooth, two products and a sum.
// 1 − smooth can lose up to u relative to ramp ≥ 1/13 (13u), so 32u covers the whole chain.
TEST(YarnInverseFrequencies, MatchesDoubleReference) {
  for (int64_t dim : {2, 16, 64, 128})
    for (double factor : {0.5, 1.0, 4.0, 40.0})
      for (double base : {10000.0, 500000.0}) {
        const std::vector<float> omega = YarnInverseFrequencies(dim, base, factor, 4096, 32, 1);
        const std::vector<double> expected =
            YarnInverseFrequenciesRef(dim, base, factor, 4096, 32, 1);
        ASSERT_EQ(omega.size(), expected.size());
        for (size_t i = 0; i < omega.size(); ++i)
          EXPECT_NEAR(omega[i], expected[i], 32 * kF32Epsilon * expected[i])
              << "dim=" << dim << " factor=" << factor << " base=" << base << " i=" << i;
      }
}

TEST(YarnInverseFrequencies, RejectsBadArguments) {
  EXPECT_THROW(YarnInverseFrequencies(63, 10000, 40, 4096, 32, 1), Error);
  EXPECT_THROW(YarnInverseFrequencies(0, 10000, 40, 4096, 32, 1), Error);
  EXPECT_THROW(YarnInverseFrequencies(64, 1.0, 40, 4096, 32, 1), Error);
  EXPECT_THROW(YarnInverseFrequencies(64, 10000, 40, 0, 32, 1), Error);
  EXPECT_THROW(YarnInverseFrequencies(64, 10000, 40, 4096, 0, 1), Error);
  EXPECT_NO_THROW(YarnInverseFrequencies(64, 10000, 1.0, 0, 0, 0));  // no scaling: unused
}

// Spec 4.5: softmax_scale = 192^-1/2 · mscale², V3 m = 1.0, V2-Lite m = 0.707.
TEST(YarnMscale, MatchesTheSpecTable) {
  EXPECT_NEAR(YarnMscale(40, 1.0), 1.3688879454, 1e-10);
  EXPECT_NEAR(YarnMscale(40, 0.707), 1.2608037774, 1e-10);
  EXPECT_NEAR(std::pow(YarnMscale(40, 1.0), 2) / std::sqrt(192.0), 0.1352337789, 1e-10);
  EXPECT_NEAR(std::pow(YarnMscale(40, 0.707), 2) / std::sqrt(192.0), 0.1147213868, 1e-10);
  EXPECT_EQ(YarnMscale(1.0, 1.0), 1.0);
  EXPECT_EQ(YarnMscale(0.5, 0.707), 1.0);
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

// Both use the same F32 angle; the kernel's cos/sin (≤ 1 ulp each, ≤ 2^-24 absolute for
// magnitudes ≤ 1) and its two products and sum (3 roundings) bound the difference by about
// 4u·(|x0| + |x1|); 8u leaves room for libm.
TEST(ApplyRope, MatchesReferenceAcrossHeadsStridesAndPositions) {
  std::mt19937 rng(4);
  const std::vector<float> omega = V3Frequencies();
  for (int64_t n_vectors : {1, 3, 128})
    for (int64_t stride : {64, 192})
      for (int64_t position : {0, 1, 7, 4095, 4096, 100000, 163839}) {
        // Heads laid out as [nope(stride - 64) | rope(64)]: rotate the rope part of each.
        std::vector<float> x = RandomVector(n_vectors * stride, rng);
        std::vector<float> expected = x;
        const size_t offset = static_cast<size_t>(stride - 64);
        const size_t length = x.size() - offset;
        ApplyRope(std::span<float>(x).subspan(offset, length), n_vectors, stride, 64, position,
                  omega);
        ApplyRopeRef(std::span<float>(expected).subspan(offset, length), n_vectors, stride, 64,
                     position, omega);
        for (int64_t v = 0; v < n_vectors; ++v)
          for (int64_t j = 0; j < stride; ++j) {
            const size_t i = static_cast<size_t>(v * stride + j);
            if (j < stride - 64) {
              ASSERT_EQ(x[i], expected[i]) << "the nope part must not move";
              continue;
            }
            const size_t pair = i - (j - (stride - 64)) % 2;
            const double magnitude = std::fabs(x[pair]) + std::fabs(x[pair + 1]) + 1e-30;
            ASSERT_NEAR(x[i], expected[i], 8 * kF32Epsilon * magnitude)
                << "n_vectors=" << n_vectors << " position=" << position << " index " << j;
          }
      }
}

TEST(ApplyRope, RotatesInterleavedPairsByPositionTimesFrequency) {
  // Small positions, where the F32 angle is close to exact: compare with the rotation written
  // out in double for each pair (x[2i], x[2i + 1]).
  std::mt19937 rng(6);
  for (int64_t rope_dim : {2, 32, 64}) {
    const std::vector<float> omega = YarnInverseFrequencies(rope_dim, 10000, 40, 4096, 32, 1);
    const std::vector<float> original = RandomVector(rope_dim, rng);
    for (int64_t position : {0, 1, 2, 17}) {
      std::vector<float> x = original;
      ApplyRope(x, 1, rope_dim, rope_dim, position, omega);
      for (int64_t i = 0; i < rope_dim / 2; ++i) {
        const double angle = static_cast<double>(position) * omega[i];
        const double x0 = original[2 * i], x1 = original[2 * i + 1];
        EXPECT_NEAR(x[2 * i], x0 * std::cos(angle) - x1 * std::sin(angle), 1e-5);
        EXPECT_NEAR(x[2 * i + 1], x0 * std::sin(angle) + x1 * std::cos(angle), 1e-5);
      }
    }
  }
}

TEST(ApplyRope, PositionZeroIsTheIdentity) {
  std::mt19937 rng(8);
  const std::vector<float> omega = V3Frequencies();
  const std::vector<float> original = RandomVector(3 * 64, rng);
  std::vector<float> x = original;
  ApplyRope(x, 3, 64, 64, 0, omega);
  EXPECT_EQ(x, original);
}

TEST(ApplyRope, ScoresDependOnlyOnRelativePosition) {
  // <R(p)q, R(s)k> = <R(p + d)q, R(s + d)k>: the property RoPE exists for.
  std::mt19937 rng(9);
  const std::vector<float> omega = V3Frequencies();
  const std::vector<float> q = RandomVector(64, rng), k = RandomVector(64, rng);
  auto score = [&](int64_t pq, int64_t pk) {
    std::vector<float> a = q, b = k;
    ApplyRope(a, 1, 64, 64, pq, omega);
    ApplyRope(b, 1, 64, 64, pk, omega);
    double dot = 0;
    for (int i = 0; i < 64; ++i) dot += static_cast<double>(a[i]) * b[i];
    return dot;
  };
  for (int64_t shift : {1, 10, 100})
    EXPECT_NEAR(score(5, 3), score(5 + shift, 3 + shift), 1e-3) << shift;
}

TEST(ApplyRope, RejectsBadArguments) {
  const std::vector<float> omega = V3Frequencies();
  std::vector<float> x(2 * 64);
  EXPECT_THROW(ApplyRope(x, 2, 64, 32, 1, omega), Error);   // inv_freq size
  EXPECT_THROW(ApplyRope(x, 3, 64, 64, 1, omega), Error);   // x too small
  EXPECT_THROW(ApplyRope(x, 2, 32, 64, 1, omega), Error);   // overlapping vectors
  EXPECT_THROW(ApplyRope(x, 2, 64, 64, -1, omega), Error);  // negative position
  EXPECT_THROW(ApplyRope(x, 2, 64, 63, 1, std::span(omega).first(31)), Error);  // odd dim
}

}  // namespace
}  // namespace whale
