#include "train/task_sort.h"

#include <gtest/gtest.h>

namespace whale {
namespace {

TEST(Sort, ParseIntegerList) {
  std::vector<int64_t> v;
  EXPECT_TRUE(ParseIntegerList("3, 1, 2", &v));
  EXPECT_EQ(v, (std::vector<int64_t>{3, 1, 2}));
  EXPECT_TRUE(ParseIntegerList("[1 2,3]", &v));
  EXPECT_EQ(v, (std::vector<int64_t>{1, 2, 3}));
  for (const char* bad : {"", "[]", "1,,2", ",1", "1,", "1, two, 3", "1; 2", "[1, 2"}) {
    EXPECT_FALSE(ParseIntegerList(bad, &v)) << bad;
  }
}

TEST(Sort, ExactListOnly) {
  Problem p;
  p.operands = {34, 7, 91, 7, 12};
  p.answer = "7, 7, 12, 34, 91";
  const SortTask task;
  const std::string solution = task.WorkedSolution(p);
  EXPECT_TRUE(task.Verify(p, solution).correct) << solution;
  EXPECT_NE(solution.find("smallest 7, sorted so far: 7, 7, left: 34, 91, 12\n"), std::string::npos)
      << solution;
  for (const char* good : {"</think>\n\n7, 7, 12, 34, 91", "</think>[7, 7, 12, 34, 91].",
                           "</think>\n\n7 7 12 34 91"}) {
    EXPECT_TRUE(task.Verify(p, good).correct) << good;
  }
  for (const char* bad : {"</think>\n\n7, 12, 34, 91", "</think>\n\n7, 7, 12, 91, 34",
                          "</think>\n\n91, 34, 12, 7, 7", "</think>\n\n7, 7, 12, 34, 91, 91",
                          "</think>\n\n7, 7, 12, 34, 91 and more", "7, 7, 12, 34, 91"}) {
    EXPECT_FALSE(task.Verify(p, bad).correct) << bad;
  }
}

TEST(Sort, SizesFollowDifficulty) {
  const SortTask task;
  TaskRng rng(9);
  for (int d = 1; d <= task.max_difficulty(); ++d) {
    const Problem p = task.Generate(Split::kTest, d, rng);
    EXPECT_EQ(p.operands.size(), static_cast<size_t>(d + 2));
    for (int64_t v : p.operands) {
      EXPECT_GE(v, 0);
      EXPECT_LE(v, d <= 4 ? 99 : 999);
    }
  }
}

}  // namespace
}  // namespace whale
