// whale eval: pass@1 (greedy and sampled) and pass@K of a checkpoint on a task's held-out split,
// per difficulty (train/evaluate.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.h"
#include "embedded_model.h"
#include "model/model.h"
#include "model/weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/evaluate.h"
#include "util/error.h"

namespace {

struct EvalFlags {
  std::string model;
  std::string difficulty;
  std::string json;
  int show = 0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  whale::EvalConfig config;
};

// "3" or "2-5" into config's range.
void ParseDifficulty(const std::string& text, whale::EvalConfig& config) {
  if (text.empty()) return;
  const size_t dash = text.find('-');
  auto number = [&](const std::string& part) {
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != part.size() || value < 1)
      whale::Fail("--difficulty '", text, "': expected N or LO-HI with positive integers");
    return value;
  };
  config.min_difficulty = number(text.substr(0, dash));
  config.max_difficulty =
      dash == std::string::npos ? config.min_difficulty : number(text.substr(dash + 1));
}

nlohmann::ordered_json RowJson(const whale::EvalRow& row) {
  nlohmann::ordered_json j;
  if (row.difficulty > 0) j["difficulty"] = row.difficulty;
  j["n"] = row.problems;
  j["pass1_greedy"] = row.pass1_greedy;
  j["pass1_sampled"] = row.pass1_sampled;
  j["pass_k"] = row.pass_k;
  j["pass_at"] = row.pass_at;
  j["format_rate"] = row.format_rate;
  j["mean_tokens"] = row.mean_tokens;
  return j;
}

nlohmann::ordered_json ReportJson(const whale::EvalReport& r, const std::string& model) {
  const whale::EvalConfig& c = r.config;
  nlohmann::ordered_json j;
  j["model"] = model;
  j["task"] = c.task;
  j["split"] = "test";
  j["min_difficulty"] = c.min_difficulty;
  j["max_difficulty"] = c.max_difficulty;
  j["problems_per_difficulty"] = c.problems;
  j["samples"] = c.samples;
  j["temperature"] = c.temperature;
  j["top_p"] = c.top_p;
  j["max_tokens"] = c.max_tokens;
  j["seed"] = c.seed;
  j["rows"] = nlohmann::ordered_json::array();
  for (const whale::EvalRow& row : r.summary.rows) j["rows"].push_back(RowJson(row));
  j["overall"] = RowJson(r.summary.overall);
  j["examples"] = nlohmann::ordered_json::array();
  for (const whale::EvalExample& e : r.examples) {
    j["examples"].push_back({{"difficulty", e.problem.difficulty},
                             {"prompt", e.prompt},
                             {"completion", e.completion},
                             {"expected", e.problem.answer},
                             {"extracted", e.verdict.extracted},
                             {"correct", e.verdict.correct},
                             {"format_ok", e.format_ok},
                             {"reason", e.verdict.reason}});
  }
  j["generated_tokens"] = r.generated_tokens;
  j["seconds"] = r.seconds;
  return j;
}

void PrintRow(const char* label, const whale::EvalRow& row) {
  std::printf("%-10s %5d %13.3f %14.3f %9.3f %7.3f %12.1f\n", label, row.problems, row.pass1_greedy,
              row.pass1_sampled, row.pass_k, row.format_rate, row.mean_tokens);
}

int Eval(EvalFlags& f) {
  const std::string dir = whale::app::ModelDirOrEmbedded(f.model);
  ParseDifficulty(f.difficulty, f.config);
  const std::unique_ptr<whale::Task> task = whale::MakeTask(f.config.task);
  f.config.Validate(*task);
  const whale::Tokenizer tokenizer = whale::Tokenizer::FromModelDir(dir);
  const whale::ChatTemplate chat_template = whale::ChatTemplate::FromModelDir(dir);
  const whale::TaskFormatter formatter(tokenizer, chat_template);
  // The problems once here, to size the model's context for the longest prompt.
  const std::vector<whale::Problem> problems = whale::DrawEvalProblems(*task, f.config);
  int64_t longest = 0;
  for (const whale::Problem& p : problems)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(formatter.PromptTokens(p).size()));
  const int parallel = whale::ResolvedParallel(f.config, static_cast<int64_t>(problems.size()));

  const whale::Weights weights = whale::Weights::Load(dir);
  if (tokenizer.vocab_size() > weights.config().vocab_size)
    whale::Fail(dir, ": the tokenizer has ", tokenizer.vocab_size(),
                " tokens but config.json's vocab_size is ", weights.config().vocab_size);
  whale::ThreadPool pool(f.threads);
  whale::ModelOptions options;
  options.max_context = longest + f.config.max_tokens;
  options.max_batch_tokens = std::max<int64_t>(256, parallel);
  whale::Model model(weights, pool, options);

  const bool tty = isatty(fileno(stderr));
  std::fprintf(stderr,
               "whale eval: %s on %s (test split), %zu problems x (1 greedy + %d sampled)\n",
               f.config.task.c_str(), dir.c_str(), problems.size(), f.config.samples);
  const whale::EvalReport report =
      whale::Evaluate(model, formatter, f.config, [tty](const whale::EvalProgress& p) {
        const double rate = p.seconds > 0 ? static_cast<double>(p.generated_tokens) / p.seconds : 0;
        // A TTY gets one line rewritten in place; a log gets no progress spam.
        if (tty)
          std::fprintf(stderr, "\r  %lld/%lld completions, %lld tokens, %.0f tok/s, %.0f s  ",
                       static_cast<long long>(p.completions_done),
                       static_cast<long long>(p.completions_total),
                       static_cast<long long>(p.generated_tokens), rate, p.seconds);
      });
  if (tty) std::fprintf(stderr, "\n");

  for (int i = 0; i < std::min<int>(f.show, static_cast<int>(report.examples.size())); ++i) {
    const whale::EvalExample& e = report.examples[i];
    std::printf("--- example %d (difficulty %d) ---\nprompt: %s\ncompletion: %s\n", i + 1,
                e.problem.difficulty, e.prompt.c_str(), e.completion.c_str());
    std::printf("verdict: %s (expected %s, extracted '%s'%s%s), format %s\n\n",
                e.verdict.correct ? "correct" : "wrong", e.problem.answer.c_str(),
                e.verdict.extracted.c_str(), e.verdict.reason.empty() ? "" : ": ",
                e.verdict.reason.c_str(), e.format_ok ? "ok" : "bad");
  }
  const int k = f.config.samples;
  std::printf("%-10s %5s %13s %14s %9s %7s %12s\n", "difficulty", "n", "pass@1 greedy",
              "pass@1 sampled", ("pass@" + std::to_string(k)).c_str(), "format", "mean tokens");
  for (const whale::EvalRow& row : report.summary.rows)
    PrintRow(std::to_string(row.difficulty).c_str(), row);
  PrintRow("all", report.summary.overall);
  std::fprintf(
      stderr, "%lld tokens in %.1f s (%.0f tok/s), sampled at temperature %g, top_p %g\n",
      static_cast<long long>(report.generated_tokens), report.seconds,
      report.seconds > 0 ? static_cast<double>(report.generated_tokens) / report.seconds : 0.0,
      f.config.temperature, f.config.top_p);
  if (!f.json.empty()) {
    std::ofstream out(f.json, std::ios::trunc);
    if (!out) whale::Fail(f.json, ": cannot create");
    out << ReportJson(report, dir).dump(2) << "\n";
    if (!out) whale::Fail(f.json, ": write error");
  }
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto f = std::make_shared<EvalFlags>();
  std::string tasks;
  for (const std::string& name : whale::TaskNames()) tasks += (tasks.empty() ? "" : ", ") + name;
  sub.add_option("--model", f->model, "model directory (HF layout; default: the embedded model)");
  sub.add_option("--task", f->config.task, "task: " + tasks)->required();
  sub.add_option("--difficulty", f->difficulty, "N or LO-HI (default: the task's whole range)");
  sub.add_option("--n", f->config.problems, "test problems per difficulty")->capture_default_str();
  sub.add_option("--samples", f->config.samples, "K sampled completions per problem")
      ->capture_default_str();
  sub.add_option("--temperature", f->config.temperature, "temperature of the sampled completions")
      ->capture_default_str();
  sub.add_option("--top-p", f->config.top_p, "nucleus mass of the sampled completions")
      ->capture_default_str();
  sub.add_option("--max-tokens", f->config.max_tokens, "tokens per completion")
      ->capture_default_str();
  sub.add_option("--seed", f->config.seed, "names the problems and the sampling streams")
      ->capture_default_str();
  sub.add_option("--parallel", f->config.parallel,
                 "sequences decoded together (default: min(64, all))");
  sub.add_option("--threads", f->threads, "compute threads")->check(CLI::Range(1, 1024));
  sub.add_option("--json", f->json, "also write the figures and examples as JSON to FILE");
  sub.add_option("--show", f->show, "print N example prompts, greedy completions and verdicts")
      ->check(CLI::Range(0, 1000));
  return [f] {
    f->config.examples = std::max(f->show, 4);
    return Eval(*f);
  };
}

}  // namespace

WHALE_COMMAND(eval, "pass@1 / pass@K of a checkpoint on a task's held-out split", Setup);
