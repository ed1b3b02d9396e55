// The learning-rate schedule's V3 shape and the MTP / bias-speed schedules.
#include "train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace whale {
namespace {

TEST(Schedule, WarmupConstantCosineTail) {
  ScheduleConfig s;
  s.peak_lr = 2e-3;
  s.warmup = 0.1;
  s.decay_start = 0.5;
  s.decay_end = 0.9;
  s.min_ratio = 0.1;
  s.tail_ratio = 0.03;
  const int64_t total = 100;
  // Linear warmup over 10 steps: step k has peak * (k + 1) / 10.
  for (int64_t k = 0; k < 10; ++k)
    EXPECT_DOUBLE_EQ(LearningRate(s, k, total), 2e-3 * static_cast<double>(k + 1) / 10.0);
  for (int64_t k = 10; k < 50; ++k) EXPECT_DOUBLE_EQ(LearningRate(s, k, total), 2e-3);
  // Cosine: at its start the peak, half way (step 70) the midpoint of peak and 10% of it.
  EXPECT_DOUBLE_EQ(LearningRate(s, 50, total), 2e-3);
  EXPECT_NEAR(LearningRate(s, 70, total), 2e-3 * (0.1 + 0.9 * 0.5), 1e-15);
  double previous = 1;
  for (int64_t k = 50; k < 90; ++k) {
    const double lr = LearningRate(s, k, total);
    EXPECT_LT(lr, previous);
    EXPECT_GT(lr, 2e-4);
    previous = lr;
  }
  for (int64_t k = 90; k < 100; ++k) EXPECT_DOUBLE_EQ(LearningRate(s, k, total), 2e-3 * 0.03);
}

TEST(Schedule, NoWarmupStartsAtPeak) {
  ScheduleConfig s;
  s.warmup = 0;
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 10), s.peak_lr);
  // A single-step run: warmup of 2% rounds to a fraction of a step and still reaches the peak.
  ScheduleConfig t;
  EXPECT_DOUBLE_EQ(LearningRate(t, 0, 1), t.peak_lr);
}

TEST(Schedule, MtpLambdaAndGamma) {
  LossConfig l;
  l.mtp_lambda = 0.3;
  l.mtp_lambda_late = 0.1;
  l.mtp_switch = 2.0 / 3.0;
  l.bias_gamma = 1e-3;
  l.gamma_off = 0.97;
  EXPECT_EQ(MtpLambda(l, 0, 300), 0.3);
  EXPECT_EQ(MtpLambda(l, 199, 300), 0.3);
  EXPECT_EQ(MtpLambda(l, 200, 300), 0.1);
  EXPECT_EQ(BiasGamma(l, 96, 100), 1e-3);
  EXPECT_EQ(BiasGamma(l, 97, 100), 0.0);
}

}  // namespace
}  // namespace whale
