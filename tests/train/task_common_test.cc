// Properties every task must have: determinism, disjoint splits, worked solutions that verify,
// and rejection of wrong or malformed answers.
#include "train/task.h"

#include <gtest/gtest.h>

#include <set>

#include "util/error.h"

namespace whale {
namespace {

TEST(TaskRng, SameSeedSameStreamAndUniformInRange) {
  TaskRng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const int64_t v = a.Uniform(3, 9);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 9);
    ++counts[v - 3];
  }
  // Each of 7 values expects 1000 draws; 800 is more than 6 standard deviations (~30) below.
  for (int n : counts) EXPECT_GT(n, 800);
}

TEST(TaskText, ParseLenientInteger) {
  int64_t v = 0;
  EXPECT_TRUE(ParseLenientInteger("882", &v));
  EXPECT_EQ(v, 882);
  EXPECT_TRUE(ParseLenientInteger(" -17. ", &v));
  EXPECT_EQ(v, -17);
  EXPECT_TRUE(ParseLenientInteger("1,234,567", &v));
  EXPECT_EQ(v, 1234567);
  for (const char* bad : {"", "-", "12 or 13", "1,23", "12,3456", ",123", "1,234,", "8 82", "abc",
                          "12a", "99999999999999999999", "1.5"}) {
    EXPECT_FALSE(ParseLenientInteger(bad, &v)) << bad;
  }
}

TEST(TaskText, ExtractAndStrip) {
  bool found = false;
  EXPECT_EQ(ExtractAnswer("a</think>b</think>\n\n 42 \n", &found), "42");
  EXPECT_TRUE(found);
  EXPECT_EQ(ExtractAnswer("no close tag 42", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(StripAnswerDecorations("The answer is 42."), "42");
  EXPECT_EQ(StripAnswerDecorations("**42**"), "42");
  EXPECT_EQ(StripAnswerDecorations("\\boxed{42}"), "42");
  EXPECT_EQ(StripAnswerDecorations("Answer: 1, 2, 3"), "1, 2, 3");
}

TEST(TaskFactory, UnknownNameAndBadDifficulty) {
  EXPECT_THROW(MakeTask("division"), Error);
  for (const std::string& name : TaskNames()) {
    const auto task = MakeTask(name);
    EXPECT_EQ(task->name(), name);
    TaskRng rng(1);
    EXPECT_THROW(task->Generate(Split::kTrain, task->min_difficulty() - 1, rng), Error);
    EXPECT_THROW(task->Generate(Split::kTrain, task->max_difficulty() + 1, rng), Error);
  }
}

class EveryTask : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryTask, DeterministicGivenSeed) {
  const auto task = MakeTask(GetParam());
  for (int d = task->min_difficulty(); d <= task->max_difficulty(); ++d) {
    TaskRng a(7), b(7);
    for (int i = 0; i < 20; ++i) {
      const Problem p = task->Generate(Split::kTrain, d, a),
                    q = task->Generate(Split::kTrain, d, b);
      EXPECT_EQ(p.prompt, q.prompt);
      EXPECT_EQ(p.answer, q.answer);
      EXPECT_EQ(p.difficulty, d);
      EXPECT_EQ(p.task, task->name());
    }
  }
}

TEST_P(EveryTask, SplitsDisjointAndBothNonEmpty) {
  const auto task = MakeTask(GetParam());
  for (int d = task->min_difficulty(); d <= task->max_difficulty(); ++d) {
    TaskRng rng(100 + d);
    std::set<std::string> train, test;
    for (int i = 0; i < 200; ++i) train.insert(task->Generate(Split::kTrain, d, rng).prompt);
    for (int i = 0; i < 200; ++i) test.insert(task->Generate(Split::kTest, d, rng).prompt);
    EXPECT_FALSE(train.empty());
    EXPECT_FALSE(test.empty());
    for (const std::string& prompt : test) {
      EXPECT_EQ(train.count(prompt), 0u) << task->name() << " d=" << d << ": " << prompt;
    }
  }
}

TEST_P(EveryTask, WorkedSolutionsVerify) {
  const auto task = MakeTask(GetParam());
  for (int d = task->min_difficulty(); d <= task->max_difficulty(); ++d) {
    TaskRng rng(1000 + d);
    for (int i = 0; i < 60; ++i) {
      const Problem p = task->Generate(i % 2 ? Split::kTest : Split::kTrain, d, rng);
      const std::string solution = task->WorkedSolution(p);
      const VerifyResult r = task->Verify(p, solution);
      ASSERT_TRUE(r.correct) << p.prompt << "\n" << solution << "\n" << r.reason;
      EXPECT_EQ(r.extracted, p.answer);
      // The solution closes the think block exactly once and opens none.
      EXPECT_EQ(solution.find("</think>"), solution.rfind("</think>"));
      EXPECT_EQ(solution.find("<think>"), std::string::npos);
    }
  }
}

TEST_P(EveryTask, RejectsOtherProblemsAnswersAndMalformedOutput) {
  const auto task = MakeTask(GetParam());
  TaskRng rng(5);
  int rejected_other = 0;
  for (int i = 0; i < 100; ++i) {
    const int d = task->max_difficulty();
    const Problem p = task->Generate(Split::kTrain, d, rng);
    const Problem other = task->Generate(Split::kTrain, d, rng);
    const std::string solution = task->WorkedSolution(p);
    const std::string scratch = solution.substr(0, solution.rfind("</think>"));
    if (other.answer != p.answer) {
      const VerifyResult r = task->Verify(p, scratch + "</think>\n\n" + other.answer);
      EXPECT_FALSE(r.correct) << p.prompt << " accepted " << other.answer;
      rejected_other += r.correct ? 0 : 1;
    }
    EXPECT_FALSE(task->Verify(p, scratch).correct);                          // no </think>
    EXPECT_FALSE(task->Verify(p, scratch + "</think>\n\n").correct);         // no answer
    EXPECT_FALSE(task->Verify(p, p.answer).correct);                         // answer, no tag
    EXPECT_FALSE(task->Verify(p, solution + "\n</think>\n\nnope").correct);  // last one counts
    EXPECT_FALSE(task->Verify(p, scratch + "</think>\n\n" + p.answer + " " + other.answer).correct);
  }
  EXPECT_GT(rejected_other, 50);
}

INSTANTIATE_TEST_SUITE_P(Tasks, EveryTask,
                         ::testing::Values("add", "sub", "mul", "countdown", "sort"));

}  // namespace
}  // namespace whale
