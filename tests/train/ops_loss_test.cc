// Cross-entropy with ignored positions: value, finite differences in double, in place, threads.
#include "train/ops_loss.h"
#include "train/ops_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "ops_grad_check.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

TEST(OpsLoss, ValueOfKnownCases) {
  // Uniform logits: −log(1/V) per counted row.
  const std::vector<double> logits(3 * 5, 0.25);
  const std::vector<int32_t> targets = {2, -1, 4};
  const CrossEntropyResult r = CrossEntropy<double>({}, logits, targets, 3, 5, 1.0, nullptr);
  EXPECT_EQ(r.n_counted, 2);
  EXPECT_NEAR(r.loss, std::log(5.0), 1e-15);
  const std::vector<int32_t> none = {-1, -1, -1};
  std::vector<double> d(15, 7.0);
  const CrossEntropyResult empty = CrossEntropy<double>(d, logits, none, 3, 5, 1.0, nullptr);
  EXPECT_EQ(empty.loss, 0.0);
  EXPECT_EQ(empty.n_counted, 0);
  EXPECT_EQ(d, std::vector<double>(15, 0.0));
}

TEST(OpsLoss, GradientMatchesFiniteDifferences) {
  std::mt19937 rng(16);
  const int64_t n = 6, vocab = 7;
  std::vector<double> logits = RandomDoubles(n * vocab, rng, -4, 4);
  const std::vector<int32_t> targets = {3, -1, 0, 6, 6, -1};
  const double scale = 0.3;
  auto loss = [&] {
    return scale * CrossEntropy<double>({}, logits, targets, n, vocab, 1.0, nullptr).loss;
  };
  std::vector<double> d(n * vocab);
  CrossEntropy<double>(d, logits, targets, n, vocab, scale, nullptr);
  ExpectGradient(logits, d, loss, "dlogits");
  for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(d[1 * vocab + j], 0.0);  // ignored row
}

// Float (threaded, in place) against double: log-sum-exp over 129 entries in F32 and the
// softmax, a few ulps of O(1) values each; the mean of per-row double sums.
TEST(OpsLoss, FloatInPlaceThreadedMatchesDouble) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const int64_t n = 33, vocab = 129;
  const std::vector<double> ld = RandomDoubles(n * vocab, rng, -8, 8);
  std::vector<float> lf(ld.begin(), ld.end());
  const std::vector<double> logits(lf.begin(), lf.end());
  std::vector<int32_t> targets(n);
  for (int64_t i = 0; i < n; ++i)
    targets[i] = i % 5 == 4 ? -1 : static_cast<int32_t>((i * 37) % vocab);
  std::vector<double> d(n * vocab);
  const CrossEntropyResult exact = CrossEntropy<double>(d, logits, targets, n, vocab, 2.0, nullptr);
  const CrossEntropyResult single = CrossEntropy<float>({}, lf, targets, n, vocab, 2.0, nullptr);
  const CrossEntropyResult r = CrossEntropy<float>(lf, lf, targets, n, vocab, 2.0, &pool);
  EXPECT_EQ(r.n_counted, exact.n_counted);
  EXPECT_EQ(r.loss, single.loss);  // the thread count does not change the result
  EXPECT_NEAR(r.loss, exact.loss, 1e-5 * exact.loss);
  for (int64_t i = 0; i < n * vocab; ++i) ASSERT_NEAR(lf[i], d[i], 1e-6 * 2.0 / r.n_counted) << i;
}

// FastExp within 2 ulps over its range (every 997th float bit pattern from −87.3 to 88), 0 below
// and at −inf; SumF32 and MaxF32 against plain loops.
TEST(OpsMath, FastExpSumAndMax) {
  const uint32_t lo = std::bit_cast<uint32_t>(-87.3f), hi = std::bit_cast<uint32_t>(88.0f);
  double worst = 0;
  auto check = [&](float x) {
    const double exact = std::exp(static_cast<double>(x));
    const double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
    worst = std::max(worst, std::fabs(FastExp(x) - exact) / ulp);
  };
  for (uint32_t b = 0x80000000u; b <= lo; b += 997) check(std::bit_cast<float>(b));  // [−87.3, −0]
  for (uint32_t b = 0; b <= hi; b += 997) check(std::bit_cast<float>(b));            // [0, 88]
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(FastExp(-87.4f), 0.0f);
  EXPECT_EQ(FastExp(-INFINITY), 0.0f);
  EXPECT_EQ(FastExp(0.0f), 1.0f);
  std::mt19937 rng(20);
  for (int64_t n : {0, 1, 15, 16, 17, 129}) {
    const std::vector<double> d = RandomDoubles(n, rng);
    const std::vector<float> x(d.begin(), d.end());
    double sum = 0, magnitude = 0;
    float max = -INFINITY;
    for (float v : x) sum += v, magnitude += std::fabs(v), max = std::max(max, v);
    EXPECT_NEAR(SumF32(x.data(), n), sum, (n + 4) * 0x1p-24 * magnitude);
    EXPECT_EQ(MaxF32(x.data(), n), max);
  }
}

TEST(OpsLoss, RejectsBadTargets) {
  const std::vector<float> logits(6, 0.0f);
  const std::vector<int32_t> too_big = {0, 3};
  EXPECT_THROW(CrossEntropy<float>({}, logits, too_big, 2, 3, 1.0, nullptr), Error);
  const std::vector<int32_t> below = {-2, 0};
  EXPECT_THROW(CrossEntropy<float>({}, logits, below, 2, 3, 1.0, nullptr), Error);
  std::vector<float> short_d(5);
  const std::vector<int32_t> ok = {0, 1};
  EXPECT_THROW(CrossEntropy<float>(short_d, logits, ok, 2, 3, 1.0, nullptr), Error);
}

}  // namespace
}  // namespace whale
