// TrainConfig: every setting of a training run (`whale train` flags and `--config FILE`), as plain
// data validated once. JSON keys are the field names below; unknown keys are errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace whale {

// Which arithmetic the linear layers use (training.md section 4): F32 throughout, or the V3 FP8
// recipe emulated (inputs of every linear product except embedding, head and router quantized
// to e4m3 with per-tile scales, F32 accumulation).
enum class Precision { kF32, kFP8 };
Precision ParsePrecision(const std::string& name);  // "f32" | "fp8"
const char* PrecisionName(Precision precision);

// The V3 learning-rate shape as fractions of the run: linear warmup to the peak, constant until
// decay_start, cosine decay to min_ratio x peak at decay_end, then a constant low tail.
struct ScheduleConfig {
  double peak_lr = 1e-3;
  double warmup = 0.02;       // fraction of steps
  double decay_start = 0.6;   // fraction of steps where the cosine starts
  double decay_end = 0.95;    // fraction of steps where it reaches min_ratio
  double min_ratio = 0.1;     // lr at decay_end / peak
  double tail_ratio = 0.033;  // lr of the tail / peak (V3: 7.3e-6 / 2.2e-4)
};

struct LossConfig {
  double mtp_lambda = 0.3;        // lambda for the first mtp_switch of the run ...
  double mtp_lambda_late = 0.1;   // ... and after it (V3: 0.3 then 0.1)
  double mtp_switch = 2.0 / 3.0;  // fraction of steps
  double balance_alpha = 1e-4;    // sequence-wise balance loss weight
  double bias_gamma = 1e-3;       // aux-loss-free bias update speed
  double gamma_off = 0.97;        // gamma is 0 from this fraction of steps on (V3: last ~3%)
};

struct OptimizerConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // matrices only
  double clip_norm = 1.0;     // global gradient norm; <= 0 disables clipping
};

struct TrainConfig {
  // Model: a preset sized to the tokenizer (init_preset) or a checkpoint directory (model_dir).
  std::string init_preset;
  std::string model_dir;
  nlohmann::json model_overrides = nlohmann::json::object();  // config.json fields to override
  std::string tokenizer;                                      // tokenizer.json
  std::vector<std::string> data;                              // text files or token shards
  // Instead of data: worked task conversations drawn from this mix (train/task_documents.h), in
  // the chat template of the tokenizer's directory.
  std::string tasks;
  // SFT: loss on the assistant's tokens only, each document in its own segment (needs tasks).
  bool sft = false;
  std::string out;

  int64_t steps = 100;
  int64_t seq_len = 128;
  int64_t batch_tokens = 4096;  // tokens per optimizer step (n_seqs = batch_tokens / seq_len)
  int64_t micro_batch_tokens =
      0;  // tokens per forward/backward; 0 = batch_tokens (no accumulation)
  Precision precision = Precision::kF32;
  uint64_t seed = 0;
  bool resume = false;
  int threads = 0;  // 0 = hardware concurrency
  int64_t log_every = 1;
  int64_t checkpoint_every = 0;    // 0 = only at the end
  std::string save_dtype = "f32";  // weights in the HF checkpoint: "f32" | "bf16"
  bool document_isolation = false;

  ScheduleConfig schedule;
  LossConfig loss;
  OptimizerConfig optimizer;

  int64_t n_seqs() const { return batch_tokens / seq_len; }
  int64_t micro_seqs() const {
    return (micro_batch_tokens > 0 ? micro_batch_tokens : batch_tokens) / seq_len;
  }
  int64_t accumulation() const { return n_seqs() / micro_seqs(); }
};

// Applies the keys of a JSON object onto `config` (fields not named keep their values). `source`
// names the file in errors. Throws Error for unknown keys and wrongly typed values.
void ApplyTrainConfigJson(TrainConfig& config, const nlohmann::json& json,
                          const std::string& source);
// Reads a JSON file and applies it.
void LoadTrainConfigFile(TrainConfig& config, const std::string& path);
// Every field, as ApplyTrainConfigJson reads it back.
nlohmann::json TrainConfigToJson(const TrainConfig& config);
// Throws Error naming the field when a value is out of range or inconsistent.
void ValidateTrainConfig(const TrainConfig& config);

}  // namespace whale
