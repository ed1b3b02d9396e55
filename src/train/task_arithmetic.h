// Multi-digit addition, subtraction and multiplication with a digit-by-digit scratchpad.
//
// Difficulty d (1..9): the first operand has exactly d digits, the second a uniform 1..d digits
// (subtraction puts the larger operand first, so results are never negative). The scratchpad
// lists digits least-significant first and writes one line per digit with its carry or borrow;
// multiplication writes each partial product that way and adds them into a running sum.
#pragma once

#include "train/task.h"

namespace whale {

enum class ArithmeticOp { kAdd, kSub, kMul };

class ArithmeticTask : public Task {
 public:
  explicit ArithmeticTask(ArithmeticOp op) : op_(op) {}
  std::string name() const override;
  int max_difficulty() const override { return 9; }
  Problem Generate(Split split, int difficulty, TaskRng& rng) const override;
  std::string WorkedSolution(const Problem& problem) const override;
  VerifyResult Verify(const Problem& problem, std::string_view completion) const override;

 private:
  ArithmeticOp op_;
};

}  // namespace whale
