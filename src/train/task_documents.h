// Task documents: procedural task problems (train/task.h) drawn from a weighted mix and rendered
// through a model's chat template into tokens: prompts to sample from (GRPO, evaluation) and whole
// worked conversations to learn from (pretraining on worked solutions, SFT).
//
// Tokens of a worked conversation = PromptTokens(problem) ++ Encode(worked solution) ++ [EOS].
// The prompt and the completion are encoded separately because that is how the model meets them
// at inference: the prompt is encoded, then the model writes the completion token by token.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/task.h"

namespace whale {

struct TaskMixEntry {
  std::string task;  // a MakeTask name
  int min_difficulty = 1;
  int max_difficulty = 1;
  double weight = 1;  // relative frequency among the entries
};

// Parses "add:1-3,sub:2,mul*0.5,countdown:3-4*2": comma-separated entries
// NAME[:LO[-HI]][*WEIGHT]; without a range the task's whole range; weight 1 by default. Throws
// Error naming the entry for an unknown task, a range outside the task's, or a weight <= 0.
std::vector<TaskMixEntry> ParseTaskMix(std::string_view spec);
// The canonical spec text of a mix (ParseTaskMix reads it back to the same mix).
std::string TaskMixToString(const std::vector<TaskMixEntry>& mix);

// Draws problems from a mix: an entry by weight, then a difficulty uniform in its range, then the
// task's generator, all from one TaskRng seeded by `seed`, so a seed names the same problems on
// every platform.
class TaskSampler {
 public:
  TaskSampler(std::vector<TaskMixEntry> mix, Split split, uint64_t seed);
  ~TaskSampler();

  struct Draw {
    const Task* task = nullptr;  // owned by the sampler
    Problem problem;
  };
  Draw Next();

  const std::vector<TaskMixEntry>& mix() const { return mix_; }
  // The sampler's instance of a task of the mix; throws Error for a task not in the mix.
  const Task& task(std::string_view name) const;

 private:
  std::vector<TaskMixEntry> mix_;
  std::vector<std::unique_ptr<Task>> tasks_;  // [mix_.size()]
  Split split_;
  TaskRng rng_;
  double total_weight_ = 0;
};

// Renders problems with a model's tokenizer and chat template (both must outlive it).
class TaskFormatter {
 public:
  // Throws Error if the tokenizer has no EOS token.
  TaskFormatter(const Tokenizer& tokenizer, const ChatTemplate& chat_template);

  // The chat template over one user message (the problem's prompt) with the generation prompt:
  // for an R1 template, BOS <｜User｜>PROMPT<｜Assistant｜><think>\n.
  std::vector<int32_t> PromptTokens(const Problem& problem) const;
  // The text PromptTokens encodes.
  std::string PromptText(const Problem& problem) const;

  // Prompt, worked solution, EOS. assistant_only: loss_mask is 1 on the completion's tokens and
  // the EOS and 0 on the prompt (SFT); otherwise loss_mask is empty (every token is learned).
  Document WorkedDocument(const Task& task, const Problem& problem, bool assistant_only) const;

  int32_t eos_id() const { return eos_id_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  const Tokenizer& tokenizer_;
  const ChatTemplate& chat_template_;
  int32_t eos_id_ = 0;
};

// A DocumentGenerator (train/data.h) of worked conversations drawn from `sampler`; both must
// outlive the generator.
DocumentGenerator TaskDocumentGenerator(TaskSampler& sampler, const TaskFormatter& formatter,
                                        bool assistant_only);

}  // namespace whale
