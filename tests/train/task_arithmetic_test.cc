#include "train/task_arithmetic.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

namespace whale {
namespace {

Problem Make(ArithmeticOp op, int64_t a, int64_t b) {
  Problem p;
  const char c = op == ArithmeticOp::kAdd ? '+' : op == ArithmeticOp::kSub ? '-' : '*';
  p.operands = {a, c, b};
  p.answer = std::to_string(op == ArithmeticOp::kAdd   ? a + b
                            : op == ArithmeticOp::kSub ? a - b
                                                       : a * b);
  return p;
}

TEST(Arithmetic, AdditionScratchpadCarriesLeastSignificantFirst) {
  const ArithmeticTask task(ArithmeticOp::kAdd);
  const std::string s = task.WorkedSolution(Make(ArithmeticOp::kAdd, 487, 395));
  EXPECT_NE(s.find("digits from the right: 7 8 4 and 5 9 3\n"), std::string::npos) << s;
  EXPECT_NE(
      s.find("7+5+0=12, digit 2 carry 1\n8+9+1=18, digit 8 carry 1\n4+3+1=8, digit 8 carry 0"),
      std::string::npos)
      << s;
  EXPECT_NE(s.find("digits from the right: 2 8 8\n"), std::string::npos) << s;
  EXPECT_TRUE(s.ends_with("487 + 395 = 882\n</think>\n\n882")) << s;
}

TEST(Arithmetic, SubtractionBorrowsAndFinalCarry) {
  const std::string sub =
      ArithmeticTask(ArithmeticOp::kSub).WorkedSolution(Make(ArithmeticOp::kSub, 503, 78));
  EXPECT_NE(sub.find("3-8-0=-5, +10=5, digit 5 borrow 1\n0-7-1=-8, +10=2, digit 2 borrow 1\n"
                     "5-0-1=4, digit 4 borrow 0\n"),
            std::string::npos)
      << sub;
  EXPECT_TRUE(sub.ends_with("\n\n425")) << sub;
  const std::string add =
      ArithmeticTask(ArithmeticOp::kAdd).WorkedSolution(Make(ArithmeticOp::kAdd, 99, 1));
  EXPECT_NE(add.find("last carry 1, digit 1\ndigits from the right: 0 0 1\n"), std::string::npos)
      << add;
}

TEST(Arithmetic, MultiplicationPartialProducts) {
  const std::string s =
      ArithmeticTask(ArithmeticOp::kMul).WorkedSolution(Make(ArithmeticOp::kMul, 487, 35));
  EXPECT_NE(s.find("times 5 (place 0):\n7*5+0=35, digit 5 carry 3\n8*5+3=43, digit 3 carry 4\n"
                   "4*5+4=24, digit 4 carry 2\nlast carry 2, digit 2\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("partial 1461 shifted 1 = 14610\n"), std::string::npos) << s;
  EXPECT_NE(s.find("running sum 17045\n"), std::string::npos) << s;
  EXPECT_TRUE(s.ends_with("\n\n17045")) << s;
}

TEST(Arithmetic, LenientParsingNeverRewardsAWrongValue) {
  const ArithmeticTask task(ArithmeticOp::kAdd);
  const Problem p = Make(ArithmeticOp::kAdd, 487, 395);
  for (const char* good :
       {"</think>\n\n882", "</think>882", "x</think>\n\n882.\n", "</think>\n\nThe answer is 882.",
        "</think>\n\n**882**", "</think>\n\n\\boxed{882}", "</think> = 882", "</think>\n\n+882"}) {
    EXPECT_TRUE(task.Verify(p, good).correct) << good;
  }
  for (const char* bad :
       {"</think>\n\n883", "</think>\n\n882 or 883", "</think>\n\n8 82", "</think>\n\n88",
        "</think>\n\n-882", "</think>\n\n882!", "</think>\n\n8,82", "</think>\n\n882</think>",
        "882", "</think>\n\n882\n</think>\n\n883", "</think>\n\n0882x"}) {
    const VerifyResult r = task.Verify(p, bad);
    EXPECT_FALSE(r.correct) << bad;
    EXPECT_FALSE(r.reason.empty()) << bad;
  }
}

TEST(Arithmetic, DigitCountsFollowDifficultyAndSubtractionIsNonNegative) {
  for (ArithmeticOp op : {ArithmeticOp::kAdd, ArithmeticOp::kSub, ArithmeticOp::kMul}) {
    const ArithmeticTask task(op);
    TaskRng rng(3);
    for (int d = 1; d <= 9; ++d) {
      for (int i = 0; i < 50; ++i) {
        const Problem p = task.Generate(Split::kTrain, d, rng);
        const int64_t a = p.operands[0], b = p.operands[2];
        const int da = static_cast<int>(std::to_string(a).size());
        const int db = static_cast<int>(std::to_string(b).size());
        EXPECT_EQ(std::max(da, db), d) << p.prompt;
        EXPECT_GE(std::min(da, db), 1);
        if (op == ArithmeticOp::kSub) {
          EXPECT_GE(a, b) << p.prompt;
        }
      }
    }
  }
}

TEST(Arithmetic, SplitsDisjointUpToOperandOrder) {
  // a + b and b + a are one problem: the prompts differ, the canonical keys must not cross.
  for (ArithmeticOp op : {ArithmeticOp::kAdd, ArithmeticOp::kMul}) {
    const ArithmeticTask task(op);
    for (int d = 1; d <= 2; ++d) {
      TaskRng rng(11);
      std::set<std::pair<int64_t, int64_t>> train;
      for (int i = 0; i < 2000; ++i) {
        const Problem p = task.Generate(Split::kTrain, d, rng);
        train.insert(std::minmax(p.operands[0], p.operands[2]));
      }
      for (int i = 0; i < 300; ++i) {
        const Problem p = task.Generate(Split::kTest, d, rng);
        EXPECT_EQ(train.count(std::minmax(p.operands[0], p.operands[2])), 0u) << p.prompt;
      }
    }
  }
}

}  // namespace
}  // namespace whale
