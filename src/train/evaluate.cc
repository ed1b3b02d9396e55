#include "train/evaluate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <set>

#include "runtime/scheduler.h"
#include "train/reward.h"
#include "util/error.h"

namespace whale {

void EvalConfig::Validate(const Task& t) const {
  const int lo = min_difficulty == 0 ? t.min_difficulty() : min_difficulty;
  const int hi = max_difficulty == 0 ? t.max_difficulty() : max_difficulty;
  if (lo < t.min_difficulty() || hi > t.max_difficulty() || lo > hi)
    Fail("difficulty ", lo, "-", hi, " is outside task '", t.name(), "''s range ",
         t.min_difficulty(), "-", t.max_difficulty());
  if (problems < 1) Fail("problems per difficulty must be at least 1, got ", problems);
  if (samples < 1) Fail("samples must be at least 1, got ", samples);
  if (!(temperature > 0.0f) || !std::isfinite(temperature))
    Fail("the sampling temperature must be finite and > 0, got ", temperature,
         " (the greedy completion is always taken as well)");
  if (!(top_p > 0.0f && top_p <= 1.0f)) Fail("top_p must be in (0, 1], got ", top_p);
  if (max_tokens < 1) Fail("max_tokens must be at least 1, got ", max_tokens);
  if (parallel < 0) Fail("parallel must be 0 (automatic) or positive, got ", parallel);
  if (examples < 0) Fail("examples must be >= 0, got ", examples);
}

double PassAtK(int n, int c, int k) {
  WHALE_ASSERT(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n, "n=", n, " c=", c, " k=", k);
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i), a product of terms in [0, 1] (no
  // overflowing binomials).
  double fail = 1.0;
  for (int i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - fail;
}

namespace {

// Adds one problem's figures to a row's sums (divided in Finish).
void Accumulate(EvalRow& row, const ProblemOutcome& o, int k_samples, int64_t& completions) {
  const int correct = static_cast<int>(
      std::count_if(o.sampled.begin(), o.sampled.end(), [](const auto& s) { return s.correct; }));
  ++row.problems;
  row.pass1_greedy += o.greedy.correct ? 1 : 0;
  row.pass1_sampled += static_cast<double>(correct) / k_samples;
  row.pass_k += correct > 0 ? 1 : 0;
  row.pass_at.resize(k_samples, 0.0);
  for (int k = 1; k <= k_samples; ++k) row.pass_at[k - 1] += PassAtK(k_samples, correct, k);
  row.format_rate += o.greedy.format_ok ? 1 : 0;
  row.mean_tokens += static_cast<double>(o.greedy.tokens);
  for (const CompletionScore& s : o.sampled) {
    row.format_rate += s.format_ok ? 1 : 0;
    row.mean_tokens += static_cast<double>(s.tokens);
  }
  completions += 1 + k_samples;
}

void Finish(EvalRow& row, int64_t completions) {
  if (row.problems == 0) return;
  const double n = row.problems;
  row.pass1_greedy /= n;
  row.pass1_sampled /= n;
  row.pass_k /= n;
  for (double& p : row.pass_at) p /= n;
  row.format_rate /= static_cast<double>(completions);
  row.mean_tokens /= static_cast<double>(completions);
}

}  // namespace

EvalSummary Summarize(std::span<const ProblemOutcome> outcomes) {
  EvalSummary summary;
  if (outcomes.empty()) return summary;
  const int k_samples = static_cast<int>(outcomes.front().sampled.size());
  if (k_samples < 1) Fail("Summarize: outcomes need at least one sampled completion");
  std::set<int> difficulties;
  for (const ProblemOutcome& o : outcomes) {
    if (static_cast<int>(o.sampled.size()) != k_samples)
      Fail("Summarize: every problem needs ", k_samples, " samples, one has ", o.sampled.size());
    difficulties.insert(o.difficulty);
  }
  int64_t all_completions = 0;
  for (int d : difficulties) {
    EvalRow row;
    row.difficulty = d;
    int64_t completions = 0;
    for (const ProblemOutcome& o : outcomes)
      if (o.difficulty == d) Accumulate(row, o, k_samples, completions);
    Finish(row, completions);
    summary.rows.push_back(std::move(row));
  }
  for (const ProblemOutcome& o : outcomes)
    Accumulate(summary.overall, o, k_samples, all_completions);
  Finish(summary.overall, all_completions);
  return summary;
}

CompletionScore ScoreCompletion(const Task& task, const Problem& problem,
                                std::string_view completion, int64_t tokens) {
  CompletionScore score;
  score.correct = task.Verify(problem, completion).correct;
  score.format_ok = FormatOk(completion);
  score.tokens = tokens;
  return score;
}

std::vector<Problem> DrawEvalProblems(const Task& task, const EvalConfig& config) {
  config.Validate(task);
  const int lo = config.min_difficulty == 0 ? task.min_difficulty() : config.min_difficulty;
  const int hi = config.max_difficulty == 0 ? task.max_difficulty() : config.max_difficulty;
  std::vector<Problem> problems;
  for (int d = lo; d <= hi; ++d) {
    // One stream per difficulty, so adding a difficulty to the range keeps the others' problems.
    TaskRng rng(config.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(d));
    std::set<std::string> seen;
    // The easiest difficulties have only a few test problems: stop drawing after many repeats
    // rather than loop forever, and report the n actually found.
    const int attempts = 20 * config.problems + 200;
    for (int a = 0; a < attempts && static_cast<int>(seen.size()) < config.problems; ++a) {
      Problem p = task.Generate(Split::kTest, d, rng);
      if (seen.insert(p.prompt).second) problems.push_back(std::move(p));
    }
  }
  return problems;
}

int ResolvedParallel(const EvalConfig& config, int64_t problems) {
  if (config.parallel > 0) return config.parallel;
  // Every problem has 1 + K sequences; 64 at once keeps a CPU's batched matmuls busy without
  // holding many KV caches.
  return static_cast<int>(std::min<int64_t>(64, problems * (1 + config.samples)));
}

EvalReport Evaluate(Model& model, const TaskFormatter& formatter, const EvalConfig& config,
                    const std::function<void(const EvalProgress&)>& progress) {
  const std::unique_ptr<Task> task = MakeTask(config.task);
  const std::vector<Problem> problems = DrawEvalProblems(*task, config);
  EvalReport report;
  report.config = config;
  report.config.min_difficulty = problems.front().difficulty;
  report.config.max_difficulty = problems.back().difficulty;
  report.config.parallel = ResolvedParallel(config, static_cast<int64_t>(problems.size()));

  std::vector<std::vector<int32_t>> prompts;  // [problems][prompt tokens]
  int64_t longest = 0;
  for (const Problem& p : problems) {
    prompts.push_back(formatter.PromptTokens(p));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts.back().size()));
  }
  SchedulerOptions scheduling;
  scheduling.parallel = report.config.parallel;
  scheduling.context = longest + config.max_tokens;
  // Prompts are short next to the completions: caching them would cost KV memory for little.
  scheduling.prefix_cache_entries = 0;
  scheduling.max_queue = static_cast<int64_t>(problems.size()) * (1 + config.samples);
  if (scheduling.context > model.options().max_context)
    Fail("the longest prompt (", longest, " tokens) plus max_tokens (", config.max_tokens,
         ") exceeds the model's context of ", model.options().max_context, " tokens");

  const auto start = std::chrono::steady_clock::now();
  std::atomic<int64_t> done{0};
  Scheduler scheduler(model, scheduling);
  // [problems] and [problems][K]. The samples are separate n = 1 requests with seeds seed + j,
  // the streams one n = K request would fork (the scheduler's rule), each holding one sequence
  // from admission on.
  std::vector<std::shared_ptr<RequestHandle>> greedy;
  std::vector<std::vector<std::shared_ptr<RequestHandle>>> sampled(problems.size());
  auto count = [&done](const RequestResult& r) { done += static_cast<int64_t>(r.choices.size()); };
  for (size_t i = 0; i < problems.size(); ++i) {
    RequestOptions request;
    request.prompt = prompts[i];
    request.max_tokens = config.max_tokens;
    request.stop_tokens = {formatter.eos_id()};
    request.sampling.temperature = 0.0f;
    greedy.push_back(scheduler.Submit(request, {}, count));
    request.sampling.temperature = config.temperature;
    request.sampling.top_p = config.top_p;
    // Disjoint seeds over problems and samples.
    const uint64_t base = config.seed * 1000003ull + i * static_cast<uint64_t>(config.samples);
    for (int j = 0; j < config.samples; ++j) {
      request.sampling.seed = base + static_cast<uint64_t>(j);
      sampled[i].push_back(scheduler.Submit(request, {}, count));
    }
  }
  const int64_t total = static_cast<int64_t>(problems.size()) * (1 + config.samples);
  auto seconds = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto wait = [&](const std::shared_ptr<RequestHandle>& handle) {
    while (!handle->WaitFor(0.25))
      if (progress)
        progress({done.load(), total, scheduler.stats().generated_tokens_total, seconds()});
  };
  for (size_t i = 0; i < problems.size(); ++i) {
    wait(greedy[i]);
    for (const auto& handle : sampled[i]) wait(handle);
  }
  if (progress) progress({done.load(), total, scheduler.stats().generated_tokens_total, seconds()});

  const Tokenizer& tokenizer = formatter.tokenizer();
  auto text_of = [&](const ChoiceResult& choice, const RequestResult& result) {
    if (choice.stop == StopReason::kError) Fail("evaluation: sampling failed: ", result.error);
    std::span<const int32_t> tokens(choice.tokens);
    if (choice.stop == StopReason::kStopToken) tokens = tokens.first(tokens.size() - 1);
    return tokenizer.Decode(tokens);
  };
  std::vector<ProblemOutcome> outcomes;
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    ProblemOutcome o;
    o.difficulty = p.difficulty;
    const RequestResult& g = greedy[i]->result();
    const std::string completion = text_of(g.choices[0], g);
    const int64_t length = static_cast<int64_t>(g.choices[0].tokens.size());
    o.greedy = ScoreCompletion(*task, p, completion, length);
    report.generated_tokens += length;
    for (const auto& handle : sampled[i]) {
      const ChoiceResult& choice = handle->result().choices[0];
      const int64_t n = static_cast<int64_t>(choice.tokens.size());
      o.sampled.push_back(ScoreCompletion(*task, p, text_of(choice, handle->result()), n));
      report.generated_tokens += n;
    }
    outcomes.push_back(std::move(o));
  }
  // Examples spread over the difficulties: the first problem of each, then the second, ...
  for (int rank = 0; static_cast<int>(report.examples.size()) < config.examples; ++rank) {
    bool any = false;
    int seen_at_difficulty = 0, last = -1;
    for (size_t i = 0;
         i < problems.size() && static_cast<int>(report.examples.size()) < config.examples; ++i) {
      if (problems[i].difficulty != last) seen_at_difficulty = 0, last = problems[i].difficulty;
      if (seen_at_difficulty++ != rank) continue;
      any = true;
      EvalExample example;
      example.problem = problems[i];
      example.prompt = formatter.PromptText(problems[i]);
      example.completion = text_of(greedy[i]->result().choices[0], greedy[i]->result());
      example.verdict = task->Verify(problems[i], example.completion);
      example.format_ok = FormatOk(example.completion);
      report.examples.push_back(std::move(example));
    }
    if (!any) break;
  }
  report.summary = Summarize(outcomes);
  report.seconds = seconds();
  return report;
}

}  // namespace whale
