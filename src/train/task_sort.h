// Sorting: put a list of whole numbers in ascending order; reward only for the exact list.
//
// Difficulty d (1..8): d + 2 numbers in [0, 99] for d <= 4, in [0, 999] above. The worked
// solution is a selection sort that writes, on each line, the smallest remaining number and what
// remains. The answer is the numbers separated by ", " (any mix of commas and spaces, optionally
// inside [ ], is accepted).
#pragma once

#include "train/task.h"

namespace whale {

// Parses a list of integers separated by commas and/or whitespace, optionally in brackets.
// False for anything else (words, empty entries such as "1,,2", an empty list).
bool ParseIntegerList(std::string_view text, std::vector<int64_t>* values);

class SortTask : public Task {
 public:
  std::string name() const override { return "sort"; }
  int max_difficulty() const override { return 8; }
  Problem Generate(Split split, int difficulty, TaskRng& rng) const override;
  std::string WorkedSolution(const Problem& problem) const override;
  VerifyResult Verify(const Problem& problem, std::string_view completion) const override;
};

}  // namespace whale
