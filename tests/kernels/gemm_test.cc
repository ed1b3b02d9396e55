#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;  // unit roundoff of F32

std::vector<float> Random(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = uniform(rng);
  return v;
}

// Checks Gemm against GemmRef element by element. A sum of k products rounded at every step
// (FMA: one rounding per step) is within k·u·Σ|a_p·b_p| of the exact sum (the standard γ_k
// bound), plus one more rounding for each k-block's addition into c and for the final F32 value;
// the reference is the exact sum rounded once. Hence the bound (k + k/kGemmKBlock + 3)·u·Σ|a·b|
// (with |c_old| added when accumulating).
void CheckGemm(int64_t m, int64_t n, int64_t k, Trans ta, Trans tb, bool accumulate,
               ThreadPool* pool, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "m=" << m << " n=" << n << " k=" << k
                                  << " ta=" << (ta == Trans::kYes) << " tb=" << (tb == Trans::kYes)
                                  << " acc=" << accumulate);
  const std::vector<float> a = Random(m * k, rng), b = Random(k * n, rng);
  std::vector<float> c = Random(m * n, rng);
  std::vector<float> expected = c;
  const std::vector<float> old = c;
  Gemm(c, a, b, m, n, k, ta, tb, accumulate, pool);
  GemmRef(expected, a, b, m, n, k, ta, tb, accumulate);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double magnitude = accumulate ? std::fabs(old[i * n + j]) : 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = ta == Trans::kYes ? a[p * m + i] : a[i * k + p];
        const double y = tb == Trans::kYes ? b[j * k + p] : b[p * n + j];
        magnitude += std::fabs(x * y);
      }
      const double tolerance =
          static_cast<double>(k + k / kGemmKBlock + 3) * kF32Epsilon * magnitude + 1e-30;
      ASSERT_NEAR(c[i * n + j], expected[i * n + j], tolerance) << "at " << i << ", " << j;
    }
}

// Every (m, n) pair of odd sizes, the layout and k rotating with the pair so that each layout
// meets every size (144 full combinations would be slow under the sanitizers).
TEST(Gemm, MatchesReferenceOverOddSizesAndLayouts) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const int64_t sizes[] = {1, 31, 32, 33, 127, 129};
  int pair = 0;
  for (int64_t m : sizes)
    for (int64_t n : sizes) {
      const Trans ta = pair % 2 ? Trans::kYes : Trans::kNo;
      const Trans tb = (pair / 2) % 2 ? Trans::kYes : Trans::kNo;
      const int64_t k = sizes[(pair * 5 + 1) % 6];
      CheckGemm(m, n, k, ta, tb, pair % 3 == 0, &pool, rng);
      ++pair;
    }
}

TEST(Gemm, SeveralKBlocksAndTiles) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (int layout = 0; layout < 4; ++layout) {
    const Trans ta = layout % 2 ? Trans::kYes : Trans::kNo;
    const Trans tb = layout / 2 ? Trans::kYes : Trans::kNo;
    CheckGemm(33, 70, 2 * kGemmKBlock + 1, ta, tb, layout % 2 == 0, &pool, rng);
    // 2 × 2 tiles of c; two layouts only (the reference is slow under the sanitizers).
    if (layout == 0 || layout == 3)
      CheckGemm(129, 257, kGemmKBlock + 1, ta, tb, layout == 0, &pool, rng);
  }
}

TEST(Gemm, ResultDoesNotDependOnThreadCount) {
  std::mt19937 rng(3);
  const int64_t m = 261, n = 300, k = 300;  // 3 × 2 tiles, 2 k-blocks
  const std::vector<float> a = Random(m * k, rng), b = Random(k * n, rng);
  std::vector<float> one(m * n), two(m * n), three(m * n);
  ThreadPool pool2(2), pool3(3);
  Gemm(one, a, b, m, n, k, Trans::kNo, Trans::kYes, false, nullptr);
  Gemm(two, a, b, m, n, k, Trans::kNo, Trans::kYes, false, &pool2);
  Gemm(three, a, b, m, n, k, Trans::kNo, Trans::kYes, false, &pool3);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

// A weight-gradient product (dW += dyᵀ·x, inner dimension = tokens) whose c is smaller than one
// 128 × 256 tile: on several threads it is split into smaller tiles (down to the minimum, for 5
// threads), which must not change a single bit, and stays within the reference's bound.
TEST(Gemm, SmallOutputSplitAcrossThreadsKeepsEveryBit) {
  std::mt19937 rng(5);
  const int64_t m = 80, n = 136, k = 2 * kGemmKBlock + 3;
  const std::vector<float> a = Random(k * m, rng), b = Random(k * n, rng);
  const std::vector<float> start = Random(m * n, rng);
  std::vector<float> one = start;
  Gemm(one, a, b, m, n, k, Trans::kYes, Trans::kNo, true, nullptr);
  for (int threads : {2, 3, 5}) {
    ThreadPool pool(threads);
    std::vector<float> c = start;
    Gemm(c, a, b, m, n, k, Trans::kYes, Trans::kNo, true, &pool);
    EXPECT_EQ(c, one) << threads << " threads";
  }
  ThreadPool pool(3);
  CheckGemm(m, n, k, Trans::kYes, Trans::kNo, true, &pool, rng);
}

TEST(Gemm, EmptyInnerDimensionZeroesOrKeeps) {
  std::vector<float> c = {1, 2, 3, 4, 5, 6};
  Gemm(c, {}, {}, 2, 3, 0, Trans::kNo, Trans::kNo, true, nullptr);
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Gemm(c, {}, {}, 2, 3, 0, Trans::kNo, Trans::kNo, false, nullptr);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

TEST(Gemm, RejectsWrongSizes) {
  std::vector<float> a(6), b(6), c(4);
  EXPECT_THROW(Gemm(c, a, b, 2, 2, 2, Trans::kNo, Trans::kNo, false, nullptr), Error);
  EXPECT_THROW(Gemm(c, a, b, -1, 2, 3, Trans::kNo, Trans::kNo, false, nullptr), Error);
  EXPECT_THROW(GemmRef(c, a, b, 2, 2, 2, Trans::kNo, Trans::kNo, false), Error);
}

}  // namespace
}  // namespace whale
