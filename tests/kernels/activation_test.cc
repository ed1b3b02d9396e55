#include "kernels/activation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/simd.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Within tolerance, or both NaN, or the same infinity.
void ExpectSameOrBothNan(float actual, float expected, double tolerance, const char* what) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": expected NaN, got " << actual;
  } else if (std::isinf(expected)) {
    EXPECT_EQ(actual, expected) << what;
  } else {
    EXPECT_NEAR(actual, expected, tolerance) << what;
  }
}

// Per element of an F32 softmax over n entries: x − max is rounded (error u·|x − max|, which
// e^(·) turns into a relative error of the same size; beyond 104 the result underflows anyway),
// exp adds ~1 ulp, the n-term sum n·u, the division one more. Below FLT_MIN results may flush.
double SoftmaxTolerance(size_t n, float x, float max, float expected) {
  const double spread = std::min(std::fabs(static_cast<double>(x) - max), 104.0);
  return (static_cast<double>(n) + 4 + spread) * kF32Epsilon * expected +
         std::numeric_limits<float>::min();
}

// softmax(x) against the reference, element by element; returns the kernel's probabilities.
std::vector<float> ExpectSoftmaxMatchesReference(const std::vector<float>& x,
                                                 const std::string& what) {
  const float max = *std::max_element(x.begin(), x.end());
  std::vector<float> p = x, expected = x;
  Softmax(p);
  SoftmaxRef(expected);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(p[i], expected[i], SoftmaxTolerance(x.size(), x[i], max, expected[i]))
        << what << " n=" << x.size() << " i=" << i;
  return p;
}

TEST(Softmax, MatchesReferenceOverOddSizes) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (size_t n : {1, 2, 7, 31, 32, 33, 127, 129, 1000}) {
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    const std::vector<float> p = ExpectSoftmaxMatchesReference(x, "default target");
    double sum = 0;
    for (float v : p) sum += v;
    EXPECT_NEAR(sum, 1.0, (n + 4) * kF32Epsilon);
  }
}

TEST(Softmax, MinusInfinityGetsZeroProbability) {
  std::vector<float> x = {1.0f, -kInf, 2.0f, -kInf, -kInf};
  Softmax(x);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_EQ(x[4], 0.0f);
  EXPECT_NEAR(x[0], 1.0 / (1.0 + std::exp(1.0)), 2e-7);
  EXPECT_NEAR(x[2], 1.0 / (1.0 + std::exp(-1.0)), 2e-7);
  std::vector<float> one_finite = {-kInf, -kInf, -3.0f};
  Softmax(one_finite);
  EXPECT_EQ(one_finite, (std::vector<float>{0.0f, 0.0f, 1.0f}));
}

TEST(Softmax, LargeMagnitudesDoNotOverflow) {
  const float big = std::numeric_limits<float>::max();
  std::vector<float> x = {big, -big, big, 1e30f, -1e30f};
  std::vector<float> expected = x;
  Softmax(x);
  SoftmaxRef(expected);
  EXPECT_EQ(x, (std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f, 0.0f}));
  EXPECT_EQ(x, expected);
  std::vector<float> close = {1e30f, std::nextafter(1e30f, 0.0f)};  // 1 ulp = 2^76 apart
  Softmax(close);
  EXPECT_EQ(close, (std::vector<float>{1.0f, 0.0f}));
}

TEST(Softmax, DegenerateRowsAreNanLikePyTorch) {
  for (std::vector<float> x :
       {std::vector<float>{-kInf, -kInf}, {1.0f, kNan, 2.0f}, {kInf, 1.0f}}) {
    std::vector<float> expected = x;
    Softmax(x);
    SoftmaxRef(expected);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_TRUE(std::isnan(x[i])) << i;
      EXPECT_TRUE(std::isnan(expected[i])) << i;
    }
  }
  std::vector<float> empty;
  Softmax(empty);
  SoftmaxRef(empty);
}

// Extreme inputs for σ and silu: overflow of e^−x (x < −88.7), underflow of the result,
// infinities, zeros and ordinary values.
std::vector<float> ExtremeInputs() {
  std::vector<float> x = {-kInf, -1e30f, -1e4f, -104.0f, -89.0f, -88.0f, -20.0f, -1.0f, -0.0f,
                          0.0f,  1e-30f, 0.5f,  20.0f,   88.0f,  89.0f,  1e4f,   1e30f, kInf};
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int i = 0; i < 129; ++i) x.push_back(normal(rng));
  return x;
}

// σ(x) = 1 / (1 + e^−x): e^−x (~1 ulp), the sum and the quotient: 4u relative. For x < −87.3
// the kernel's e^−x overflows and σ flushes to 0 where the true value is below FLT_MIN.
TEST(Sigmoid, MatchesReferenceIncludingExtremes) {
  const std::vector<float> x = ExtremeInputs();
  std::vector<float> out(x.size()), expected(x.size());
  Sigmoid(out, x);
  SigmoidRef(expected, x);
  for (size_t i = 0; i < x.size(); ++i)
    ExpectSameOrBothNan(out[i], expected[i],
                        4 * kF32Epsilon * expected[i] + std::numeric_limits<float>::min(), "σ");
  EXPECT_EQ(out[0], 0.0f);               // σ(−inf)
  EXPECT_EQ(out[x.size() - 130], 1.0f);  // σ(+inf)
  EXPECT_EQ(out[9], 0.5f);               // σ(0)
  std::vector<float> in_place = x;
  Sigmoid(in_place, in_place);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(in_place[i], out[i]);
}

// silu(g)·u = g / (1 + e^−g) · u: 5 roundings, 6u relative. For g < −87.3 the kernel flushes
// (as PyTorch's formula does) where |silu(g)| < 88·e^−87.3 < 1e-36, hence the absolute part.
TEST(SiluMul, MatchesReferenceIncludingExtremes) {
  const std::vector<float> gate = ExtremeInputs();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> up(gate.size());
  for (float& v : up) v = uniform(rng);
  std::vector<float> out(gate.size()), expected(gate.size());
  SiluMul(out, gate, up);
  SiluMulRef(expected, gate, up);
  for (size_t i = 0; i < gate.size(); ++i)
    ExpectSameOrBothNan(out[i], expected[i],
                        6 * kF32Epsilon * std::fabs(expected[i]) + 1e-36 * std::fabs(up[i]),
                        "silu");
  std::vector<float> in_place = gate;
  SiluMul(in_place, in_place, up);
  for (size_t i = 0; i < gate.size(); ++i) {
    if (!std::isnan(out[i])) {
      EXPECT_EQ(in_place[i], out[i]);
    }
  }
}

// Every Highway target this build compiled and this CPU runs, against the references: the
// softmax over odd sizes (every tail length), σ and silu over the extremes plus NaN inputs.
TEST(Activations, EveryTargetMatchesTheReference) {
  const std::vector<int64_t> targets = SupportedSimdTargets();
  ASSERT_FALSE(targets.empty());
  std::vector<float> extremes = ExtremeInputs();
  extremes.push_back(kNan);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> up(extremes.size());
  for (float& v : up) v = uniform(rng);
  for (int64_t target : targets) {
    ForceSimdTarget(target);
    const std::string name = SimdTargetName(target);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (size_t n = 1; n <= 40; ++n) {
      std::vector<float> x(n);
      for (float& v : x) v = normal(rng);
      ExpectSoftmaxMatchesReference(x, name);
    }
    std::vector<float> nan_row = {1.0f, 2.0f, kNan, 3.0f, 4.0f};
    Softmax(nan_row);
    for (float v : nan_row) EXPECT_TRUE(std::isnan(v)) << name;

    std::vector<float> out(extremes.size()), expected(extremes.size());
    Sigmoid(out, extremes);
    SigmoidRef(expected, extremes);
    for (size_t i = 0; i < extremes.size(); ++i)
      ExpectSameOrBothNan(out[i], expected[i],
                          4 * kF32Epsilon * expected[i] + std::numeric_limits<float>::min(),
                          name.c_str());
    SiluMul(out, extremes, up);
    SiluMulRef(expected, extremes, up);
    for (size_t i = 0; i < extremes.size(); ++i)
      ExpectSameOrBothNan(out[i], expected[i],
                          6 * kF32Epsilon * std::fabs(expected[i]) + 1e-36 * std::fabs(up[i]),
                          name.c_str());
  }
  ForceSimdTarget(0);
}

TEST(Activations, RejectMismatchedSizes) {
  std::vector<float> a(4), b(5);
  EXPECT_THROW(SiluMul(a, a, b), Error);
  EXPECT_THROW(SiluMul(a, b, a), Error);
  EXPECT_THROW(Sigmoid(a, b), Error);
}

}  // namespace
}  // namespace whale
