// Countdown: reach a target from 3 or 4 given numbers with + - * / and parentheses.
//
// Rules (what the verifier enforces): every given number is used exactly once (as a multiset);
// no other numbers appear; no unary minus; division by zero and any division that leaves a
// fraction are rejected (exact rational arithmetic, so every intermediate value must be a whole
// number); the expression must equal the target. The answer may be followed by "= target".
// Difficulty 1..4: 3 numbers in [1,25], 3 in [1,100], 4 in [1,25], 4 in [1,100]. The target
// comes from a random expression tree over all the numbers with positive whole intermediates and
// lies in [1, 1000], so every problem is solvable; the worked solution is that tree's steps.
#pragma once

#include <optional>

#include "train/task.h"

namespace whale {

struct CountdownCheck {
  bool ok = false;
  int64_t value = 0;   // the expression's value when ok
  std::string reason;  // why it is rejected
};

// Parses `expression` and checks it against the rules above for `numbers` and `target`.
CountdownCheck CheckCountdownExpression(std::string_view expression,
                                        const std::vector<int64_t>& numbers, int64_t target);

class CountdownTask : public Task {
 public:
  std::string name() const override { return "countdown"; }
  int max_difficulty() const override { return 4; }
  Problem Generate(Split split, int difficulty, TaskRng& rng) const override;
  std::string WorkedSolution(const Problem& problem) const override;
  VerifyResult Verify(const Problem& problem, std::string_view completion) const override;
};

}  // namespace whale
