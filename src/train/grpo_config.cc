#include "train/grpo_config.h"

#include <cmath>

#include "train/config_file.h"
#include "util/error.h"

namespace whale {
namespace {

// One list of fields serves reading, writing and error messages.
template <typename Visitor>
void VisitGrpo(GrpoConfig& c, Visitor&& v) {
  v("model", c.model);
  v("tasks", c.tasks);
  v("out", c.out);
  v("steps", c.steps);
  v("prompts_per_step", c.prompts_per_step);
  v("group_size", c.group_size);
  v("max_tokens", c.max_tokens);
  v("max_prompt_tokens", c.max_prompt_tokens);
  v("temperature", c.temperature);
  v("lr", c.lr);
  v("warmup_steps", c.warmup_steps);
  v("weight_decay", c.weight_decay);
  v("clip_norm", c.clip_norm);
  v("adam_beta1", c.adam_beta1);
  v("adam_beta2", c.adam_beta2);
  v("mini_batches", c.mini_batches);
  v("micro_batch_tokens", c.micro_batch_tokens);
  v("beta", c.beta);
  v("ref_reset_every", c.ref_reset_every);
  v("variant", c.variant);
  v("eps_lo", c.eps_lo);
  v("eps_hi", c.eps_hi);
  v("max_resample_rounds", c.max_resample_rounds);
  v("overlong_cache", c.overlong_cache);
  v("accuracy_weight", c.accuracy_weight);
  v("format_weight", c.format_weight);
  v("curriculum_window", c.curriculum_window);
  v("curriculum_threshold", c.curriculum_threshold);
  v("seed", c.seed);
  v("threads", c.threads);
  v("parallel", c.parallel);
  v("log_every", c.log_every);
  v("checkpoint_every", c.checkpoint_every);
  v("samples_per_log", c.samples_per_log);
  v("save_dtype", c.save_dtype);
}

}  // namespace

void ApplyGrpoConfigJson(GrpoConfig& config, const nlohmann::json& json,
                         const std::string& source) {
  if (!json.is_object()) Fail(source, ": a GRPO config must be a JSON object");
  for (const auto& item : json.items()) {
    bool found = false;
    VisitGrpo(config, [&](const char* name, auto& field) {
      if (item.key() != name) return;
      found = true;
      ReadConfigField(item.value(), field, item.key(), source);
    });
    if (!found) Fail(source, ": unknown field \"", item.key(), "\"");
  }
}

void LoadGrpoConfigFile(GrpoConfig& config, const std::string& path) {
  ApplyGrpoConfigJson(config, ReadJsonConfigFile(path, "GRPO config"), path);
}

nlohmann::json GrpoConfigToJson(const GrpoConfig& config) {
  GrpoConfig c = config;  // the visitor takes non-const references
  nlohmann::json j = nlohmann::json::object();
  VisitGrpo(c, [&](const char* name, auto& field) { j[name] = field; });
  return j;
}

void ValidateGrpoConfig(const GrpoConfig& c) {
  const auto positive = [](const char* name, int64_t value) {
    if (value < 1) Fail("grpo: ", name, " = ", value, "; expected >= 1");
  };
  if (c.model.empty()) Fail("grpo: model (a checkpoint directory) is required");
  if (c.tasks.empty()) Fail("grpo: tasks (a task mix such as \"add:2-3\") is required");
  if (c.out.empty()) Fail("grpo: out (the output directory) is required");
  positive("steps", c.steps);
  positive("prompts_per_step", c.prompts_per_step);
  if (c.group_size < 2) Fail("grpo: group_size = ", c.group_size, "; expected >= 2");
  positive("max_tokens", c.max_tokens);
  positive("max_prompt_tokens", c.max_prompt_tokens);
  if (!(c.temperature > 0) || !std::isfinite(c.temperature))
    Fail("grpo: temperature = ", c.temperature, "; expected a finite value > 0 (RL samples)");
  if (!(c.lr > 0)) Fail("grpo: lr = ", c.lr, "; expected > 0");
  if (c.warmup_steps < 0) Fail("grpo: warmup_steps = ", c.warmup_steps, "; expected >= 0");
  if (!(c.weight_decay >= 0)) Fail("grpo: weight_decay = ", c.weight_decay, "; expected >= 0");
  if (!(c.adam_beta1 >= 0 && c.adam_beta1 < 1) || !(c.adam_beta2 >= 0 && c.adam_beta2 < 1))
    Fail("grpo: adam_beta1 = ", c.adam_beta1, ", adam_beta2 = ", c.adam_beta2,
         "; expected each in [0, 1)");
  positive("mini_batches", c.mini_batches);
  positive("micro_batch_tokens", c.micro_batch_tokens);
  if (c.ref_reset_every < 0) Fail("grpo: ref_reset_every = ", c.ref_reset_every, "; expected >= 0");
  if (c.variant != "grpo" && c.variant != "dr-grpo" && c.variant != "dapo")
    Fail("grpo: variant \"", c.variant, "\" is not one of grpo, dr-grpo, dapo");
  if (c.max_resample_rounds < 0)
    Fail("grpo: max_resample_rounds = ", c.max_resample_rounds, "; expected >= 0");
  if (c.overlong_cache > c.max_tokens)
    Fail("grpo: overlong_cache = ", c.overlong_cache, " exceeds max_tokens = ", c.max_tokens);
  if (c.curriculum_window < 0)
    Fail("grpo: curriculum_window = ", c.curriculum_window, "; expected >= 0");
  if (!(c.curriculum_threshold > 0 && c.curriculum_threshold <= 1))
    Fail("grpo: curriculum_threshold = ", c.curriculum_threshold, "; expected in (0, 1]");
  if (c.threads < 0) Fail("grpo: threads = ", c.threads, "; expected >= 0");
  if (c.parallel < 0) Fail("grpo: parallel = ", c.parallel, "; expected >= 0");
  if (c.parallel > 0 && c.parallel < c.group_size)
    Fail("grpo: parallel = ", c.parallel, " is below group_size = ", c.group_size,
         " (a group's completions decode together)");
  positive("log_every", c.log_every);
  if (c.checkpoint_every < 0)
    Fail("grpo: checkpoint_every = ", c.checkpoint_every, "; expected >= 0");
  if (c.samples_per_log < 0) Fail("grpo: samples_per_log = ", c.samples_per_log, "; expected >= 0");
  if (c.save_dtype != "f32" && c.save_dtype != "bf16")
    Fail("grpo: save_dtype \"", c.save_dtype, "\" is not f32 or bf16");
  ValidateGrpoLossOptions(GrpoLossOptionsFor(c));
  ValidateRewardOptions(RewardOptionsFor(c));
}

GrpoLossOptions GrpoLossOptionsFor(const GrpoConfig& c) {
  GrpoLossOptions o;
  o.eps_lo = c.eps_lo;
  o.eps_hi = c.eps_hi >= 0 ? c.eps_hi : c.variant == "dapo" ? 0.28 : c.eps_lo;
  o.beta = c.beta;
  o.aggregation = c.variant == "dapo"      ? LossAggregation::kDapo
                  : c.variant == "dr-grpo" ? LossAggregation::kDrGrpo
                                           : LossAggregation::kGrpo;
  o.max_length = c.max_tokens;
  return o;
}

AdvantageMode AdvantageModeFor(const GrpoConfig& c) {
  return c.variant == "dr-grpo" ? AdvantageMode::kDrGrpo : AdvantageMode::kGrpo;
}

RewardOptions RewardOptionsFor(const GrpoConfig& c) {
  RewardOptions r;
  r.accuracy_weight = c.accuracy_weight;
  r.format_weight = c.format_weight;
  const int64_t cache = c.overlong_cache >= 0 ? c.overlong_cache
                        : c.variant == "dapo" ? c.max_tokens / 4
                                              : 0;
  // The penalty applies when a window is set (DAPO by default): completions that reach the
  // budget were cut off and score -1 on the length term.
  if (cache > 0) {
    r.max_length = c.max_tokens;
    r.overlong_cache = cache;
  }
  return r;
}

bool DropsZeroVarianceGroups(const GrpoConfig& c) {
  return c.variant == "dapo";
}

}  // namespace whale
