// GrpoConfig: every setting of a GRPO run (`whale grpo` flags and `--config FILE`), as plain data
// validated once. JSON keys are the field names below; unknown keys are errors.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "train/grpo_loss.h"
#include "train/reward.h"

namespace whale {

struct GrpoConfig {
  std::string model;  // checkpoint directory (HF layout, with tokenizer.json): policy and reference
  std::string tasks;  // task mix spec (ParseTaskMix), e.g. "add:2-3,mul:1-2"
  std::string out;

  int64_t steps = 100;
  int64_t prompts_per_step = 8;     // groups per step (after DAPO's dropping)
  int64_t group_size = 8;           // G completions per prompt
  int64_t max_tokens = 256;         // L_max: the completion budget (EOS included)
  int64_t max_prompt_tokens = 256;  // longest prompt the sampler's context must hold
  // Sampling temperature; the trained log-probabilities are the sampled policy's,
  // log softmax(z / temperature) (R1: 1).
  double temperature = 1.0;

  double lr = 1e-5;
  int64_t warmup_steps = 5;  // linear warmup, then constant
  double weight_decay = 0.0;
  double clip_norm = 1.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.99;
  int64_t mini_batches = 4;  // μ optimizer steps per rollout batch (> 1: ratios ≠ 1, clipping)
  // Padded tokens per forward/backward: a mini-batch runs as micro-batches of at most this many
  // (one completion at least) whose gradients add up, so activation memory stays bounded
  // whatever prompts_per_step × group_size is (about 240 KB per token for whale-tiny-r1).
  int64_t micro_batch_tokens = 16384;

  double beta = 0.01;            // KL (k3) weight to the reference (the starting model); 0: none
  int64_t ref_reset_every = 0;   // copy the policy into the reference every N steps (0: never)
  std::string variant = "grpo";  // grpo | dr-grpo | dapo
  double eps_lo = 0.2;
  double eps_hi = -1;  // < 0: the variant's (dapo 0.28, else eps_lo)
  // DAPO: rounds of resampling prompts to replace groups whose rewards are all equal.
  int64_t max_resample_rounds = 3;
  // DAPO overlong penalty window L_c in tokens; < 0: the variant's (dapo max_tokens / 4, else 0).
  int64_t overlong_cache = -1;

  double accuracy_weight = 1.0;
  double format_weight = 0.1;

  // Curriculum: when an entry's accuracy over its last `curriculum_window` completions exceeds
  // `curriculum_threshold`, both ends of its difficulty range move up by one (up to the task's
  // maximum). Off when curriculum_window is 0.
  int64_t curriculum_window = 128;
  double curriculum_threshold = 0.8;

  uint64_t seed = 0;
  int threads = 0;   // 0 = hardware concurrency
  int parallel = 0;  // sequences the sampler decodes at once; 0 = every completion of a round
  int64_t log_every = 1;
  int64_t checkpoint_every = 0;    // 0 = only at the end
  int64_t samples_per_log = 4;     // completions written to samples.jsonl per logged step
  std::string save_dtype = "f32";  // f32 | bf16
};

// Applies the keys of a JSON object onto `config`; `source` names the file in errors. Throws
// Error for unknown keys and wrongly typed values.
void ApplyGrpoConfigJson(GrpoConfig& config, const nlohmann::json& json, const std::string& source);
void LoadGrpoConfigFile(GrpoConfig& config, const std::string& path);
nlohmann::json GrpoConfigToJson(const GrpoConfig& config);
// Throws Error naming the field when a value is out of range or inconsistent.
void ValidateGrpoConfig(const GrpoConfig& config);

// Derived settings of the variant.
GrpoLossOptions GrpoLossOptionsFor(const GrpoConfig& config);
AdvantageMode AdvantageModeFor(const GrpoConfig& config);
RewardOptions RewardOptionsFor(const GrpoConfig& config);
bool DropsZeroVarianceGroups(const GrpoConfig& config);  // dapo

}  // namespace whale
