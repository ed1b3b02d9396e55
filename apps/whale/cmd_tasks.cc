// whale tasks: the procedural reasoning tasks (train/task.h). `list` names them with their
// difficulty ranges; `sample` writes problems with their worked solutions, as readable text (a
// corpus for `whale tokenizer train`, or for a person to look at) or as JSON lines.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "train/task.h"
#include "train/task_documents.h"
#include "util/error.h"

namespace {

struct SampleFlags {
  std::string tasks;
  int64_t n = 10;
  std::string split = "train";
  uint64_t seed = 0;
  bool jsonl = false;
  std::string out;
};

int RunList() {
  for (const std::string& name : whale::TaskNames()) {
    const std::unique_ptr<whale::Task> task = whale::MakeTask(name);
    std::printf("%-10s difficulty %d-%d\n", name.c_str(), task->min_difficulty(),
                task->max_difficulty());
  }
  return 0;
}

int RunSample(const SampleFlags& flags) {
  if (flags.n < 0) whale::Fail("--n: ", flags.n, " is negative");
  const whale::Split split = flags.split == "test" ? whale::Split::kTest : whale::Split::kTrain;
  whale::TaskSampler sampler(whale::ParseTaskMix(flags.tasks), split, flags.seed);
  std::FILE* out = stdout;
  if (!flags.out.empty()) {
    out = std::fopen(flags.out.c_str(), "wb");
    if (out == nullptr) whale::Fail("--out: cannot open ", flags.out, " for writing");
  }
  for (int64_t i = 0; i < flags.n; ++i) {
    const whale::TaskSampler::Draw draw = sampler.Next();
    const std::string solution = draw.task->WorkedSolution(draw.problem);
    std::string line;
    if (flags.jsonl) {
      line = nlohmann::json{{"task", draw.problem.task},
                            {"difficulty", draw.problem.difficulty},
                            {"prompt", draw.problem.prompt},
                            {"answer", draw.problem.answer},
                            {"completion", solution}}
                 .dump() +
             "\n";
    } else {
      line = draw.problem.prompt + "\n" + solution + "\n\n";
    }
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
      whale::Fail("writing ", flags.out.empty() ? "standard output" : flags.out, " failed");
    }
  }
  if (out != stdout && std::fclose(out) != 0) whale::Fail("closing ", flags.out, " failed");
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  sub.require_subcommand(1);
  CLI::App* list = sub.add_subcommand("list", "the tasks and their difficulty ranges");
  auto flags = std::make_shared<SampleFlags>();
  CLI::App* sample =
      sub.add_subcommand("sample", "problems with worked solutions, as text or JSON lines");
  sample->add_option("--tasks", flags->tasks, "task mix, e.g. add:1-3,sub:2,mul:1-2*0.5")
      ->required();
  sample->add_option("--n", flags->n, "problems")->capture_default_str();
  sample->add_option("--split", flags->split, "train or test (held out)")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  sample->add_option("--seed", flags->seed, "seed of the draw")->capture_default_str();
  sample->add_flag("--jsonl", flags->jsonl, "one JSON object per problem");
  sample->add_option("--out", flags->out, "file to write (default: standard output)");
  return [list, sample, flags] {
    if (list->parsed()) return RunList();
    if (sample->parsed()) return RunSample(*flags);
    return 2;
  };
}

}  // namespace

WHALE_COMMAND(tasks, "the reasoning tasks: list them, or sample problems with worked solutions",
              Setup);
