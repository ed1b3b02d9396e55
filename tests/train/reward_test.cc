#include "train/reward.h"

#include <gtest/gtest.h>

#include "train/task_arithmetic.h"
#include "util/error.h"

namespace whale {
namespace {

TEST(Reward, FormatRules) {
  EXPECT_TRUE(FormatOk("7+5=12\n</think>\n\n12"));
  EXPECT_TRUE(FormatOk("</think>12"));
  EXPECT_FALSE(FormatOk("7+5=12\n\n12"));                        // never closed
  EXPECT_FALSE(FormatOk("x</think>\n\n  \n"));                   // blank answer
  EXPECT_FALSE(FormatOk("x</think>y</think>\n\n12"));            // closed twice
  EXPECT_FALSE(FormatOk("x</think>\n\n<think>again</think>1"));  // re-opened
  EXPECT_FALSE(FormatOk("<think>x</think>\n\n12"));              // opened again at the start
  EXPECT_FALSE(FormatOk(""));
}

TEST(Reward, OverlongPenaltyMatchesDapo) {
  // L_max = 100, L_c = 20: free up to 80, linear to -1 at 100, -1 beyond.
  EXPECT_EQ(OverlongPenalty(1, 100, 20), 0.0);
  EXPECT_EQ(OverlongPenalty(80, 100, 20), 0.0);
  EXPECT_DOUBLE_EQ(OverlongPenalty(81, 100, 20), -0.05);
  EXPECT_DOUBLE_EQ(OverlongPenalty(90, 100, 20), -0.5);
  EXPECT_DOUBLE_EQ(OverlongPenalty(100, 100, 20), -1.0);
  EXPECT_EQ(OverlongPenalty(101, 100, 20), -1.0);
  EXPECT_EQ(OverlongPenalty(100, 100, 0), 0.0);  // no cache: a cliff just past L_max
  EXPECT_EQ(OverlongPenalty(101, 100, 0), -1.0);
}

TEST(Reward, WeightsCombine) {
  const ArithmeticTask task(ArithmeticOp::kAdd);
  Problem p;
  p.operands = {487, '+', 395};
  p.answer = "882";
  RewardOptions options;
  options.accuracy_weight = 1.0;
  options.format_weight = 0.25;

  Reward r = ComputeReward(task, p, "ok\n</think>\n\n882", 10, options);
  EXPECT_TRUE(r.correct);
  EXPECT_TRUE(r.format_ok);
  EXPECT_DOUBLE_EQ(r.total, 1.25);

  r = ComputeReward(task, p, "ok\n</think>\n\n883", 10, options);
  EXPECT_FALSE(r.correct);
  EXPECT_TRUE(r.format_ok);
  EXPECT_DOUBLE_EQ(r.total, 0.25);
  EXPECT_FALSE(r.verify.reason.empty());

  // Right value but the think block re-opened: accuracy without the format bonus.
  r = ComputeReward(task, p, "<think>ok</think>\n\n882", 10, options);
  EXPECT_TRUE(r.correct);
  EXPECT_FALSE(r.format_ok);
  EXPECT_DOUBLE_EQ(r.total, 1.0);

  r = ComputeReward(task, p, "ok 882", 10, options);
  EXPECT_FALSE(r.correct);
  EXPECT_FALSE(r.format_ok);
  EXPECT_DOUBLE_EQ(r.total, 0.0);

  options.max_length = 100;
  options.overlong_cache = 20;
  options.overlong_weight = 0.5;
  r = ComputeReward(task, p, "ok\n</think>\n\n882", 90, options);
  EXPECT_DOUBLE_EQ(r.length, -0.5);
  EXPECT_DOUBLE_EQ(r.total, 1.25 - 0.25);
}

TEST(Reward, ValidateOptions) {
  RewardOptions options;
  EXPECT_NO_THROW(ValidateRewardOptions(options));
  options.max_length = 10;
  options.overlong_cache = 11;
  EXPECT_THROW(ValidateRewardOptions(options), Error);
  options.overlong_cache = -1;
  EXPECT_THROW(ValidateRewardOptions(options), Error);
  options.max_length = -5;
  options.overlong_cache = 0;
  EXPECT_THROW(ValidateRewardOptions(options), Error);
}

}  // namespace
}  // namespace whale
