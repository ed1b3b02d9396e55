#include "train/train_config.h"

#include "train/config_file.h"
#include "util/error.h"

namespace whale {
namespace {

// One list of fields serves reading, writing and error messages (style: a field visitor).
template <typename Visitor>
void VisitSchedule(ScheduleConfig& s, Visitor&& v) {
  v("peak_lr", s.peak_lr);
  v("warmup", s.warmup);
  v("decay_start", s.decay_start);
  v("decay_end", s.decay_end);
  v("min_ratio", s.min_ratio);
  v("tail_ratio", s.tail_ratio);
}

template <typename Visitor>
void VisitLoss(LossConfig& l, Visitor&& v) {
  v("mtp_lambda", l.mtp_lambda);
  v("mtp_lambda_late", l.mtp_lambda_late);
  v("mtp_switch", l.mtp_switch);
  v("balance_alpha", l.balance_alpha);
  v("bias_gamma", l.bias_gamma);
  v("gamma_off", l.gamma_off);
}

template <typename Visitor>
void VisitOptimizer(OptimizerConfig& o, Visitor&& v) {
  v("beta1", o.beta1);
  v("beta2", o.beta2);
  v("eps", o.eps);
  v("weight_decay", o.weight_decay);
  v("clip_norm", o.clip_norm);
}

template <typename Visitor>
void VisitTop(TrainConfig& c, Visitor&& v) {
  v("init", c.init_preset);
  v("model", c.model_dir);
  v("tokenizer", c.tokenizer);
  v("data", c.data);
  v("tasks", c.tasks);
  v("sft", c.sft);
  v("out", c.out);
  v("steps", c.steps);
  v("seq_len", c.seq_len);
  v("batch_tokens", c.batch_tokens);
  v("micro_batch_tokens", c.micro_batch_tokens);
  v("seed", c.seed);
  v("resume", c.resume);
  v("threads", c.threads);
  v("log_every", c.log_every);
  v("checkpoint_every", c.checkpoint_every);
  v("save_dtype", c.save_dtype);
  v("document_isolation", c.document_isolation);
}

template <typename Section, typename VisitFn>
void ApplySection(Section& section, const nlohmann::json& json, const std::string& prefix,
                  const std::string& source, VisitFn visit) {
  if (!json.is_object()) Fail(source, ": field \"", prefix, "\" must be an object");
  for (const auto& item : json.items()) {
    const std::string key = item.key();
    const nlohmann::json& value = item.value();
    bool found = false;
    visit(section, [&](const char* name, auto& field) {
      if (key != name) return;
      found = true;
      ReadConfigField(value, field, prefix + key, source);
    });
    if (!found) Fail(source, ": unknown field \"", prefix, key, "\"");
  }
}

}  // namespace

Precision ParsePrecision(const std::string& name) {
  if (name == "f32") return Precision::kF32;
  if (name == "fp8") return Precision::kFP8;
  Fail("precision \"", name, "\" is not one of f32, fp8");
}

const char* PrecisionName(Precision precision) {
  return precision == Precision::kF32 ? "f32" : "fp8";
}

void ApplyTrainConfigJson(TrainConfig& config, const nlohmann::json& json,
                          const std::string& source) {
  if (!json.is_object()) Fail(source, ": a training config must be a JSON object");
  for (const auto& item : json.items()) {
    const std::string key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "schedule") {
      ApplySection(config.schedule, value, "schedule.", source,
                   [](ScheduleConfig& s, auto&& v) { VisitSchedule(s, v); });
    } else if (key == "loss") {
      ApplySection(config.loss, value, "loss.", source,
                   [](LossConfig& s, auto&& v) { VisitLoss(s, v); });
    } else if (key == "optimizer") {
      ApplySection(config.optimizer, value, "optimizer.", source,
                   [](OptimizerConfig& s, auto&& v) { VisitOptimizer(s, v); });
    } else if (key == "model_overrides") {
      if (!value.is_object()) Fail(source, ": field \"model_overrides\" must be an object");
      config.model_overrides.update(value);
    } else if (key == "precision") {
      if (!value.is_string()) Fail(source, ": field \"precision\" must be \"f32\" or \"fp8\"");
      try {
        config.precision = ParsePrecision(value.get<std::string>());
      } catch (const Error& e) {
        Fail(source, ": ", e.what());
      }
    } else {
      bool found = false;
      VisitTop(config, [&](const char* name, auto& field) {
        if (key != name) return;
        found = true;
        ReadConfigField(value, field, key, source);
      });
      if (!found) Fail(source, ": unknown field \"", key, "\"");
    }
  }
}

void LoadTrainConfigFile(TrainConfig& config, const std::string& path) {
  ApplyTrainConfigJson(config, ReadJsonConfigFile(path, "training config"), path);
}

nlohmann::json TrainConfigToJson(const TrainConfig& config) {
  TrainConfig c = config;  // the visitors take non-const references
  nlohmann::json j = nlohmann::json::object();
  VisitTop(c, [&](const char* name, auto& field) { j[name] = field; });
  j["precision"] = PrecisionName(c.precision);
  j["model_overrides"] = c.model_overrides;
  VisitSchedule(c.schedule, [&](const char* name, auto& field) { j["schedule"][name] = field; });
  VisitLoss(c.loss, [&](const char* name, auto& field) { j["loss"][name] = field; });
  VisitOptimizer(c.optimizer, [&](const char* name, auto& field) { j["optimizer"][name] = field; });
  return j;
}

void ValidateTrainConfig(const TrainConfig& c) {
  const auto require = [](bool ok, const char* field, auto value, const char* expected) {
    if (!ok) Fail("training config: ", field, " = ", value, "; expected ", expected);
  };
  require(c.init_preset.empty() != c.model_dir.empty(), "init/model",
          c.init_preset + "|" + c.model_dir, "exactly one of --init PRESET and --model DIR");
  require(c.data.empty() || c.tasks.empty(), "data/tasks", c.tasks,
          "either --data FILES or --tasks SPEC, not both");
  require(!c.sft || !c.tasks.empty(), "sft", "true",
          "a --tasks mix to draw SFT conversations from");
  require(c.steps >= 1, "steps", c.steps, ">= 1");
  require(c.seq_len >= 1, "seq_len", c.seq_len, ">= 1");
  require(c.batch_tokens >= c.seq_len && c.batch_tokens % c.seq_len == 0, "batch_tokens",
          c.batch_tokens, "a positive multiple of seq_len");
  const int64_t micro = c.micro_batch_tokens > 0 ? c.micro_batch_tokens : c.batch_tokens;
  require(micro % c.seq_len == 0 && c.batch_tokens % micro == 0, "micro_batch_tokens", micro,
          "a multiple of seq_len that divides batch_tokens");
  require(c.log_every >= 1, "log_every", c.log_every, ">= 1");
  require(c.checkpoint_every >= 0, "checkpoint_every", c.checkpoint_every, ">= 0");
  require(c.save_dtype == "f32" || c.save_dtype == "bf16", "save_dtype", c.save_dtype,
          "f32 or bf16");
  const ScheduleConfig& s = c.schedule;
  require(s.peak_lr > 0, "schedule.peak_lr", s.peak_lr, "> 0");
  require(s.warmup >= 0 && s.warmup <= s.decay_start && s.decay_start <= s.decay_end &&
              s.decay_end <= 1,
          "schedule.warmup/decay_start/decay_end", s.warmup,
          "0 <= warmup <= decay_start <= decay_end <= 1");
  require(s.min_ratio >= 0 && s.min_ratio <= 1, "schedule.min_ratio", s.min_ratio, "in [0, 1]");
  require(s.tail_ratio >= 0 && s.tail_ratio <= 1, "schedule.tail_ratio", s.tail_ratio, "in [0, 1]");
  const OptimizerConfig& o = c.optimizer;
  require(o.beta1 >= 0 && o.beta1 < 1, "optimizer.beta1", o.beta1, "in [0, 1)");
  require(o.beta2 >= 0 && o.beta2 < 1, "optimizer.beta2", o.beta2, "in [0, 1)");
  require(o.eps > 0, "optimizer.eps", o.eps, "> 0");
  require(o.weight_decay >= 0, "optimizer.weight_decay", o.weight_decay, ">= 0");
  const LossConfig& l = c.loss;
  require(l.mtp_lambda >= 0 && l.mtp_lambda_late >= 0, "loss.mtp_lambda", l.mtp_lambda, ">= 0");
  require(l.balance_alpha >= 0, "loss.balance_alpha", l.balance_alpha, ">= 0");
  require(l.bias_gamma >= 0, "loss.bias_gamma", l.bias_gamma, ">= 0");
}

}  // namespace whale
