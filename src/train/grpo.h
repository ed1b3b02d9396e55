// GRPO on verifiable tasks (training.md 5-6): each step draws prompts from a task mix, samples G
// completions per prompt from the current policy with the inference engine (continuous batching,
// runtime/scheduler.h), scores them with the tasks' verifiers, normalizes rewards within each
// group into advantages and takes `mini_batches` clipped-surrogate AdamW steps on the rollout,
// with a k3 KL penalty to a frozen reference (the starting model).
//
// The gradient: GrpoLoss (train/grpo_loss.h) gives g_t = ∂L/∂log π_θ(o_t) per completion token;
// the backward of the weighted cross-entropy Σ_t w_t·CE_t with w_t = −g_t is then exactly ∂L/∂θ
// (∂CE_t/∂z = −∂log π(o_t)/∂z), one forward and one backward per mini-batch. π is the sampled
// policy softmax(z / temperature): the model's main CE reads logits / temperature.
// The MTP module is not trained (its loss weight is 0, so it is skipped), the balance loss is
// off and the balancing bias is left as the starting model had it.
//
// Files in `out`: metrics.jsonl (one row per logged step), samples.jsonl (a few prompts,
// completions and rewards per logged step, to read for reward hacking), report.html, and the HF
// checkpoint (config.json, model.safetensors, tokenizer files, generation_config.json when the
// start had one) every checkpoint_every steps and at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/grpo_config.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/task_documents.h"
#include "train/train_model.h"
#include "train/train_parameters.h"
#include "util/thread_pool.h"

namespace whale {

class Scheduler;

// Moves each task entry of a mix toward harder problems: when the entry's accuracy over its last
// `window` completions exceeds `threshold`, both ends of its difficulty range go up by one (up to
// the task's maximum) and its record restarts. window 0: never.
class Curriculum {
 public:
  Curriculum(std::vector<TaskMixEntry> mix, int64_t window, double threshold);
  // The entry a drawn problem came from: the first with its task and a range holding its
  // difficulty. Throws Error when none does.
  size_t EntryOf(const Problem& problem) const;
  void Record(size_t entry, bool correct);
  // Applies the rule to every entry; returns how many ranges moved.
  int Update();
  const std::vector<TaskMixEntry>& mix() const { return mix_; }

 private:
  std::vector<TaskMixEntry> mix_;
  std::vector<int> task_max_;             // [mix_.size()] each entry's task maximum
  std::vector<std::deque<bool>> recent_;  // [mix_.size()] correctness, newest last
  int64_t window_;
  double threshold_;
};

class GrpoTrainer {
 public:
  // Loads the policy and the reference from config.model; `pool` must outlive the trainer.
  GrpoTrainer(const GrpoConfig& config, ThreadPool& pool);
  ~GrpoTrainer();

  // One rollout and its optimizer steps; returns the metrics row.
  nlohmann::json Step();
  // Steps to config.steps, logging and checkpointing; quiet: no progress line.
  void Run(bool quiet = false);
  // Writes the HF checkpoint and report.html into config.out.
  void SaveCheckpoint();

  int64_t step() const { return step_; }
  const ParameterSet<float>& params() const { return params_; }
  const std::vector<TaskMixEntry>& mix() const { return curriculum_.mix(); }

 private:
  struct Group;
  // Samples G completions for each problem with `scheduler` (running the current policy) and
  // scores them; advantages are filled in.
  std::vector<Group> Sample(Scheduler& scheduler, const std::vector<TaskSampler::Draw>& draws,
                            uint64_t round_seed);
  void UpdateCurriculum(const std::vector<Group>& groups);
  void WriteSamples(const std::vector<Group>& groups);

  GrpoConfig config_;
  ThreadPool& pool_;
  Tokenizer tokenizer_;
  ChatTemplate chat_template_;
  std::unique_ptr<TaskFormatter> formatter_;
  ParameterSet<float> params_;
  ParameterSet<float> reference_;
  Curriculum curriculum_;
  std::unique_ptr<TrainModel<float>> model_;
  std::unique_ptr<TrainModel<float>> reference_model_;
  std::unique_ptr<AdamW> optimizer_;
  std::string scratch_;  // where the policy is written for the inference engine
  std::vector<int32_t> stop_tokens_;
  int64_t step_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<MetricsWriter> samples_;
};

}  // namespace whale
