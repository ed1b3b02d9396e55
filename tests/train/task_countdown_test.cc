#include "train/task_countdown.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace whale {
namespace {

TEST(Countdown, AcceptsValidExpressionsInSeveralSpellings) {
  const std::vector<int64_t> n = {3, 5, 7};
  for (const char* good : {"3*5+7", "3 * 5 + 7", "7 + 5 * 3", "(3 * 5) + 7", "3*5+7 = 22",
                           "3 x 5 + 7", "3 \xC3\x97 5 + 7", "((7)) + 3 * 5"}) {
    const CountdownCheck c = CheckCountdownExpression(good, n, 22);
    EXPECT_TRUE(c.ok) << good << ": " << c.reason;
    EXPECT_EQ(c.value, 22);
  }
  // 7 * (8 - 6) / 2 = 7 with whole intermediates; division results must be whole.
  EXPECT_TRUE(CheckCountdownExpression("7 * (8 - 6) / 2", {7, 8, 6, 2}, 7).ok);
  EXPECT_TRUE(CheckCountdownExpression("(8 - 6) - 7 + 12", {7, 8, 6, 12}, 7).ok);
}

TEST(Countdown, RejectsRuleBreaks) {
  const std::vector<int64_t> n = {3, 5, 7};
  const struct {
    const char* expression;
    const char* reason_part;
  } cases[] = {
      {"3*5+7+3", "each exactly once"},                // 3 used twice
      {"3*5+8", "each exactly once"},                  // 8 not given
      {"3*5", "each exactly once"},                    // 7 unused
      {"3*5+7 = 21", "after '='"},                     // wrong stated target
      {"3*5+7 = twenty", "after '='"},                 // unparsable target
      {"3*7+5", "not the target"},                     // valid but 26
      {"-3+5*7", "cannot parse"},                      // unary minus
      {"(3*5+7", "cannot parse"},                      // unbalanced
      {"3*5+7)", "cannot parse"},                      // trailing junk
      {"3 ** 5 + 7", "cannot parse"},                  // not an operator
      {"3.0*5+7", "cannot parse"},                     // decimals are not allowed
      {"", "cannot parse"},                            // empty
      {"99999999999999999999*3+5+7", "cannot parse"},  // absurd literal, no overflow
  };
  for (const auto& c : cases) {
    const CountdownCheck check = CheckCountdownExpression(c.expression, n, 22);
    EXPECT_FALSE(check.ok) << c.expression;
    EXPECT_NE(check.reason.find(c.reason_part), std::string::npos)
        << c.expression << ": " << check.reason;
  }
  // Division by zero and fractional intermediates, even when the end value would be right.
  EXPECT_NE(CheckCountdownExpression("4 / (2 - 2)", {4, 2, 2}, 1).reason.find("division by zero"),
            std::string::npos);
  EXPECT_NE(CheckCountdownExpression("7 / 2 * 4", {7, 2, 4}, 14).reason.find("fraction"),
            std::string::npos);
  EXPECT_FALSE(CheckCountdownExpression("(7 * 4) / 2", {7, 2, 4}, 15).ok);
  EXPECT_TRUE(CheckCountdownExpression("(7 * 4) / 2", {7, 2, 4}, 14).ok);
  // A deeply nested expression is refused, not a stack overflow.
  std::string deep = std::string(100, '(') + "3" + std::string(100, ')') + "*5+7";
  EXPECT_FALSE(CheckCountdownExpression(deep, n, 22).ok);
}

TEST(Countdown, GeneratedProblemsAreSolvableAndWellFormed) {
  const CountdownTask task;
  TaskRng rng(21);
  for (int d = 1; d <= task.max_difficulty(); ++d) {
    for (int i = 0; i < 200; ++i) {
      const Problem p = task.Generate(i % 3 ? Split::kTrain : Split::kTest, d, rng);
      ASSERT_EQ(p.operands.size(), d <= 2 ? 3u : 4u);
      for (int64_t v : p.operands) {
        EXPECT_GE(v, 1);
        EXPECT_LE(v, d % 2 ? 25 : 100);
      }
      EXPECT_GE(p.target, 1);
      EXPECT_LE(p.target, 1000);
      const CountdownCheck c = CheckCountdownExpression(p.answer, p.operands, p.target);
      ASSERT_TRUE(c.ok) << p.prompt << " " << p.answer << ": " << c.reason;
    }
  }
}

TEST(Countdown, VerifierUsesTheProblemsNumbers) {
  const CountdownTask task;
  TaskRng rng(4);
  const Problem p = task.Generate(Split::kTrain, 3, rng);
  const std::string solution = task.WorkedSolution(p);
  EXPECT_TRUE(task.Verify(p, solution).correct) << solution;
  // The same expression against a problem whose numbers differ in one place is wrong.
  Problem changed = p;
  changed.operands[0] += 1;
  EXPECT_FALSE(task.Verify(changed, solution).correct);
  // Using the target itself as the answer is not allowed.
  EXPECT_FALSE(task.Verify(p, "</think>\n\n" + std::to_string(p.target)).correct);
}

}  // namespace
}  // namespace whale
