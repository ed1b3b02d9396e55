// Evaluation on a task's held-out split: per difficulty, pass@1 of the greedy completion, pass@1
// of sampled completions (the mean correctness over K samples), pass@K (any of K correct) and the
// unbiased pass@k estimator for every k <= K, the format rate and the mean completion length.
//
// Sampling and scoring are separate: Evaluate() draws the problems, samples every completion
// through one Scheduler (greedy and sampled requests of all problems submitted at once) and scores
// each with ScoreCompletion(); Summarize() turns scored outcomes into the figures, so the
// arithmetic can be checked on hand-made outcomes.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "train/task.h"
#include "train/task_documents.h"

namespace whale {

struct EvalConfig {
  std::string task;          // a MakeTask name
  int min_difficulty = 0;    // 0: the task's lowest
  int max_difficulty = 0;    // 0: the task's highest
  int problems = 50;         // distinct test-split problems per difficulty (fewer if the split is
                             // smaller: the reported n says how many)
  int samples = 8;           // K sampled completions per problem
  float temperature = 1.0f;  // of the sampled completions (the greedy one uses 0)
  float top_p = 1.0f;
  int64_t max_tokens = 256;  // per completion
  uint64_t seed = 0;         // names the problems and the sampling streams
  int parallel = 0;          // sequences decoded together; 0: min(64, all)
  int examples = 4;          // greedy completions kept for showing

  // Throws Error naming the field and value (difficulties against the task's range).
  void Validate(const Task& task) const;
};

// One completion, scored.
struct CompletionScore {
  bool correct = false;
  bool format_ok = false;  // train/reward.h FormatOk
  int64_t tokens = 0;      // generated, the stop token included
};

// Every completion of one problem.
struct ProblemOutcome {
  int difficulty = 1;
  CompletionScore greedy;
  std::vector<CompletionScore> sampled;  // [K]
};

struct EvalRow {
  int difficulty = 0;  // 0 on the overall row
  int problems = 0;
  double pass1_greedy = 0;
  double pass1_sampled = 0;  // mean over problems of (correct samples / K)
  double pass_k = 0;         // fraction of problems with at least one correct sample
  // pass_at[k - 1], k = 1..K: the unbiased estimator 1 - C(K-c, k) / C(K, k) averaged over
  // problems (c = correct samples); pass_at[0] == pass1_sampled and pass_at[K-1] == pass_k.
  std::vector<double> pass_at;
  double format_rate = 0;  // over every completion, greedy and sampled
  double mean_tokens = 0;  // over every completion, greedy and sampled
};

// The unbiased pass@k of n samples of which c are correct: 1 - C(n-c, k) / C(n, k).
double PassAtK(int n, int c, int k);

// The per-difficulty rows (ascending) and the overall row (every problem weighs the same). Every
// outcome must have the same number of samples, K >= 1.
struct EvalSummary {
  std::vector<EvalRow> rows;
  EvalRow overall;
};
EvalSummary Summarize(std::span<const ProblemOutcome> outcomes);

CompletionScore ScoreCompletion(const Task& task, const Problem& problem,
                                std::string_view completion, int64_t tokens);

struct EvalExample {
  Problem problem;
  std::string prompt;      // as rendered through the chat template
  std::string completion;  // the greedy completion
  VerifyResult verdict;
  bool format_ok = false;
};

struct EvalReport {
  EvalConfig config;  // with the difficulty range resolved
  EvalSummary summary;
  std::vector<EvalExample> examples;
  int64_t generated_tokens = 0;
  double seconds = 0;
};

struct EvalProgress {
  int64_t completions_done = 0;
  int64_t completions_total = 0;
  int64_t generated_tokens = 0;
  double seconds = 0;
};

// Samples and scores. `model` must allow config.parallel (resolved) tokens per batch and a context
// of the longest prompt plus max_tokens; ResolvedParallel() and the report's prompts say how much.
// `progress` runs on the calling thread about four times a second.
EvalReport Evaluate(Model& model, const TaskFormatter& formatter, const EvalConfig& config,
                    const std::function<void(const EvalProgress&)>& progress = {});

// The difficulties and problems Evaluate() uses: distinct prompts drawn from the test split.
std::vector<Problem> DrawEvalProblems(const Task& task, const EvalConfig& config);

// config.parallel, or its default for `problems` problems.
int ResolvedParallel(const EvalConfig& config, int64_t problems);

}  // namespace whale
