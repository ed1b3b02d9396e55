// Evaluation: the pass@k estimator and the summary against hand-computed values, completion
// scoring on known completions, and a run on a tiny random model whose figures are in range,
// repeat exactly for a seed, and whose greedy completions are what the model alone generates.
#include "train/evaluate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"
#include "runtime/generator.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/reward.h"

namespace whale {
namespace {

namespace fs = std::filesystem;

// Sums of a few doubles that are exact in binary or off by a rounding step: 1e-12 is far below
// the smallest difference that matters (1 / (problems * samples)) and far above double rounding.
constexpr double kTol = 1e-12;

TEST(Evaluate, PassAtKMatchesTheBinomialFormula) {
  EXPECT_DOUBLE_EQ(PassAtK(4, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(4, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(4, 4, 1), 1.0);
  EXPECT_NEAR(PassAtK(4, 1, 1), 0.25, kTol);
  EXPECT_NEAR(PassAtK(4, 1, 2), 1.0 - 3.0 / 6.0, kTol);   // 1 - C(3,2)/C(4,2)
  EXPECT_NEAR(PassAtK(4, 2, 2), 1.0 - 1.0 / 6.0, kTol);   // 1 - C(2,2)/C(4,2)
  EXPECT_NEAR(PassAtK(5, 2, 3), 1.0 - 1.0 / 10.0, kTol);  // 1 - C(3,3)/C(5,3)
  EXPECT_DOUBLE_EQ(PassAtK(5, 3, 3), 1.0);                // n - c < k
  EXPECT_DOUBLE_EQ(PassAtK(4, 1, 4), 1.0);                // pass@n: any correct
  // Large n stays finite (no binomials are formed): C(150,10)/C(200,10).
  double expected = 1.0;
  for (int i = 0; i < 10; ++i) expected *= (150.0 - i) / (200.0 - i);
  EXPECT_NEAR(PassAtK(200, 50, 10), 1.0 - expected, 1e-12);
}

CompletionScore S(bool correct, bool format_ok, int64_t tokens) {
  return {correct, format_ok, tokens};
}

TEST(Evaluate, SummaryOfKnownOutcomes) {
  // K = 3. Difficulty 1: problem A greedy right, samples (right, wrong, wrong); problem B greedy
  // wrong, samples all wrong. Difficulty 2: problem C greedy right, samples (right, right, wrong).
  std::vector<ProblemOutcome> outcomes = {
      {1, S(true, true, 10), {S(true, true, 20), S(false, true, 30), S(false, false, 40)}},
      {2, S(true, true, 8), {S(true, true, 8), S(true, false, 8), S(false, false, 8)}},
      {1, S(false, false, 4), {S(false, false, 6), S(false, true, 2), S(false, false, 8)}},
  };
  const EvalSummary s = Summarize(outcomes);
  ASSERT_EQ(s.rows.size(), 2u);
  const EvalRow& d1 = s.rows[0];
  EXPECT_EQ(d1.difficulty, 1);
  EXPECT_EQ(d1.problems, 2);
  EXPECT_NEAR(d1.pass1_greedy, 0.5, kTol);
  EXPECT_NEAR(d1.pass1_sampled, (1.0 / 3 + 0.0) / 2, kTol);
  EXPECT_NEAR(d1.pass_k, 0.5, kTol);
  ASSERT_EQ(d1.pass_at.size(), 3u);
  // Problem A: c = 1 of 3: pass@1 1/3, pass@2 1 - C(2,2)/C(3,2) = 2/3, pass@3 1. B: 0.
  EXPECT_NEAR(d1.pass_at[0], (1.0 / 3) / 2, kTol);
  EXPECT_NEAR(d1.pass_at[1], (2.0 / 3) / 2, kTol);
  EXPECT_NEAR(d1.pass_at[2], 0.5, kTol);
  // 8 completions, 4 well formed (A: greedy, s1, s2; B: s2); tokens 10+20+30+40+4+6+2+8 = 120.
  EXPECT_NEAR(d1.format_rate, 4.0 / 8, kTol);
  EXPECT_NEAR(d1.mean_tokens, 120.0 / 8, kTol);

  const EvalRow& d2 = s.rows[1];
  EXPECT_EQ(d2.difficulty, 2);
  EXPECT_EQ(d2.problems, 1);
  EXPECT_NEAR(d2.pass1_greedy, 1.0, kTol);
  EXPECT_NEAR(d2.pass1_sampled, 2.0 / 3, kTol);
  EXPECT_NEAR(d2.pass_k, 1.0, kTol);
  EXPECT_NEAR(d2.pass_at[1], 1.0, kTol);  // c = 2 of 3: any pair holds a right one
  EXPECT_NEAR(d2.format_rate, 2.0 / 4, kTol);
  EXPECT_NEAR(d2.mean_tokens, 8.0, kTol);

  const EvalRow& all = s.overall;
  EXPECT_EQ(all.difficulty, 0);
  EXPECT_EQ(all.problems, 3);
  EXPECT_NEAR(all.pass1_greedy, 2.0 / 3, kTol);
  EXPECT_NEAR(all.pass1_sampled, (1.0 / 3 + 2.0 / 3 + 0.0) / 3, kTol);
  EXPECT_NEAR(all.pass_k, 2.0 / 3, kTol);
  EXPECT_NEAR(all.pass_at[1], (2.0 / 3 + 1.0 + 0.0) / 3, kTol);
  EXPECT_NEAR(all.format_rate, 6.0 / 12, kTol);
  EXPECT_NEAR(all.mean_tokens, (120.0 + 32.0) / 12, kTol);

  // Mixed sample counts are a caller bug, reported rather than averaged wrongly.
  outcomes[1].sampled.pop_back();
  EXPECT_THROW(Summarize(outcomes), Error);
}

TEST(Evaluate, ScoresKnownCompletions) {
  const auto task = MakeTask("add");
  TaskRng rng(3);
  const Problem p = task->Generate(Split::kTest, 2, rng);
  const std::string worked = task->WorkedSolution(p);
  CompletionScore s = ScoreCompletion(*task, p, worked, 17);
  EXPECT_TRUE(s.correct);
  EXPECT_TRUE(s.format_ok);
  EXPECT_EQ(s.tokens, 17);

  s = ScoreCompletion(*task, p, "some thought\n</think>\n\n" + p.answer + "1", 5);
  EXPECT_FALSE(s.correct);  // a wrong value in a good format
  EXPECT_TRUE(s.format_ok);

  s = ScoreCompletion(*task, p, p.answer, 2);  // the answer without closing the reasoning
  EXPECT_FALSE(s.correct);
  EXPECT_FALSE(s.format_ok);

  s = ScoreCompletion(*task, p, "<think>x</think>\n\n" + p.answer, 6);
  EXPECT_TRUE(s.correct);     // the verifier reads the text after the last </think>
  EXPECT_FALSE(s.format_ok);  // but the template had opened <think> already
}

TEST(Evaluate, DrawsDistinctTestProblemsPerDifficulty) {
  const auto task = MakeTask("add");
  EvalConfig config;
  config.task = "add";
  config.min_difficulty = 1;
  config.max_difficulty = 3;
  config.problems = 30;
  config.seed = 9;
  const std::vector<Problem> problems = DrawEvalProblems(*task, config);
  std::set<std::string> prompts;
  std::map<int, int> per_difficulty;
  for (const Problem& p : problems) {
    EXPECT_TRUE(prompts.insert(p.prompt).second) << "repeated: " << p.prompt;
    ++per_difficulty[p.difficulty];
  }
  EXPECT_EQ(per_difficulty.size(), 3u);
  EXPECT_LE(per_difficulty[1], 30);  // one-digit sums: the test split may hold fewer than 30
  EXPECT_GT(per_difficulty[1], 0);
  EXPECT_EQ(per_difficulty[2], 30);
  EXPECT_EQ(per_difficulty[3], 30);
  // The same seed names the same problems; another seed others.
  EXPECT_EQ(DrawEvalProblems(*task, config)[40].prompt, problems[40].prompt);
  config.seed = 10;
  EXPECT_NE(DrawEvalProblems(*task, config)[40].prompt, problems[40].prompt);

  config.max_difficulty = 99;
  EXPECT_THROW(DrawEvalProblems(*task, config), Error);
  config.max_difficulty = 3;
  config.samples = 0;
  EXPECT_THROW(config.Validate(*task), Error);
  config.samples = 4;
  config.parallel = -1;
  EXPECT_THROW(config.Validate(*task), Error);
}

// tiny-v3 sized to the serving tests' R1-style tokenizer, written once per binary.
struct TinyChatModel {
  TinyChatModel() {
    const fs::path data = fs::path(WHALE_TEST_DATA) / "serve";
    dir = (fs::temp_directory_path() / ("whale-eval-test-" + std::to_string(::getpid()))).string();
    const Tokenizer t = Tokenizer::FromModelDir(data.string());
    ModelConfig config = FindPreset("tiny-v3").config;
    config.vocab_size = t.vocab_size();
    config.bos_token_id = *t.bos_id();
    config.eos_token_ids = {*t.eos_id()};
    ThreadPool pool(1);
    RandomCheckpointOptions options;
    options.storage = StorageType::kF32;
    options.seed = 21;
    WriteRandomCheckpoint(config, options, dir, pool);
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(data / name, fs::path(dir) / name, fs::copy_options::overwrite_existing);
  }
  ~TinyChatModel() {
    std::error_code error;
    fs::remove_all(dir, error);
  }
  std::string dir;
};

TEST(Evaluate, TinyModelFiguresAreInRangeAndRepeat) {
  TinyChatModel files;
  const Tokenizer tokenizer = Tokenizer::FromModelDir(files.dir);
  const ChatTemplate chat_template = ChatTemplate::FromModelDir(files.dir);
  const TaskFormatter formatter(tokenizer, chat_template);
  const Weights weights = Weights::Load(files.dir);
  ThreadPool pool(2);
  Model model(weights, pool, {.max_batch_tokens = 64, .max_context = 256});

  EvalConfig config;
  config.task = "add";
  config.min_difficulty = 2;
  config.max_difficulty = 3;
  config.problems = 3;
  config.samples = 4;
  config.max_tokens = 12;
  config.seed = 5;
  config.parallel = 3;  // fewer than 1 + K: requests queue and join as others finish
  config.examples = 6;
  int progress_calls = 0;
  const EvalReport a = Evaluate(model, formatter, config, [&](const EvalProgress& p) {
    ++progress_calls;
    EXPECT_EQ(p.completions_total, 6 * (1 + 4));
    EXPECT_LE(p.completions_done, p.completions_total);
  });
  EXPECT_GE(progress_calls, 1);
  ASSERT_EQ(a.summary.rows.size(), 2u);
  EXPECT_EQ(a.config.min_difficulty, 2);
  EXPECT_EQ(a.config.max_difficulty, 3);
  for (const EvalRow* row : {&a.summary.rows[0], &a.summary.rows[1], &a.summary.overall}) {
    EXPECT_EQ(row->problems, row == &a.summary.overall ? 6 : 3);
    for (double v : {row->pass1_greedy, row->pass1_sampled, row->pass_k, row->format_rate}) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
    ASSERT_EQ(row->pass_at.size(), 4u);
    EXPECT_NEAR(row->pass_at[0], row->pass1_sampled, kTol);
    EXPECT_NEAR(row->pass_at[3], row->pass_k, kTol);
    for (int k = 1; k < 4; ++k) EXPECT_GE(row->pass_at[k] + kTol, row->pass_at[k - 1]);
    EXPECT_GE(row->mean_tokens, 1.0);
    EXPECT_LE(row->mean_tokens, 12.0);
  }
  EXPECT_GT(a.generated_tokens, 0);
  EXPECT_LE(a.generated_tokens, 6 * 5 * 12);
  EXPECT_NEAR(a.summary.overall.mean_tokens * 30, static_cast<double>(a.generated_tokens), 1e-9);

  // Every greedy completion is what the model generates alone from the formatted prompt, and
  // its verdict is the task's.
  ASSERT_EQ(a.examples.size(), 6u);
  EXPECT_EQ(a.examples[0].problem.difficulty, 2);  // spread over the difficulties
  EXPECT_EQ(a.examples[1].problem.difficulty, 3);
  Generator generator(model, 256);
  const auto task = MakeTask("add");
  for (const EvalExample& e : a.examples) {
    GenerationOptions options;
    options.max_tokens = 12;
    options.sampling.temperature = 0.0f;
    options.stop_tokens = {formatter.eos_id()};
    std::vector<int32_t> tokens =
        generator.Generate(formatter.PromptTokens(e.problem), options).tokens;
    if (!tokens.empty() && tokens.back() == formatter.eos_id()) tokens.pop_back();
    EXPECT_EQ(e.completion, tokenizer.Decode(tokens));
    EXPECT_EQ(e.prompt, formatter.PromptText(e.problem));
    EXPECT_EQ(e.verdict.correct, task->Verify(e.problem, e.completion).correct);
    EXPECT_EQ(e.format_ok, FormatOk(e.completion));
  }

  // The same seed gives the same figures and completions.
  const EvalReport b = Evaluate(model, formatter, config);
  EXPECT_EQ(b.generated_tokens, a.generated_tokens);
  for (size_t i = 0; i < a.summary.rows.size(); ++i) {
    EXPECT_EQ(b.summary.rows[i].pass1_sampled, a.summary.rows[i].pass1_sampled);
    EXPECT_EQ(b.summary.rows[i].format_rate, a.summary.rows[i].format_rate);
    EXPECT_EQ(b.summary.rows[i].mean_tokens, a.summary.rows[i].mean_tokens);
  }
  for (size_t i = 0; i < a.examples.size(); ++i)
    EXPECT_EQ(b.examples[i].completion, a.examples[i].completion);

  // Another seed draws other problems (two-digit sums: hundreds of test problems to draw from).
  config.seed = 6;
  const EvalReport c = Evaluate(model, formatter, config);
  EXPECT_NE(c.examples[0].problem.prompt, a.examples[0].problem.prompt);
}

}  // namespace
}  // namespace whale
