// Trainer: the pretraining loop. Each optimizer step draws `accumulation` micro-batches from the
// data source, accumulates their gradients (each scaled by 1 / accumulation), clips and applies
// AdamW at the scheduled learning rate, then moves each MoE layer's balancing bias by
// γ · sign(mean load − load). Logs metrics.jsonl rows, a progress line, and writes checkpoints
// (HF layout + optimizer state) and report.html into config.out.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "train/data.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/train_config.h"
#include "train/train_model.h"
#include "train/train_parameters.h"
#include "util/thread_pool.h"

namespace whale {

class Trainer {
 public:
  // params (initialized or loaded by the caller), data and pool must outlive the trainer.
  // `tokenizer_json` is copied into every checkpoint (empty: none).
  Trainer(const TrainConfig& config, ParameterSet<float>& params, DataSource& data,
          ThreadPool& pool, std::string tokenizer_json);
  ~Trainer();

  // Continues the run saved in config.out: parameters, Adam moments and step from its
  // checkpoint, the data source fast-forwarded past the micro-batches already drawn, metrics rows
  // after that step dropped. Throws Error if config.out holds no trainer state.
  void Resume();

  // One optimizer step; returns its metrics row (common keys).
  nlohmann::json Step();

  // Steps until config.steps (or `stop_at` steps, when given, for tests of resumption), writing
  // metrics every log_every steps, checkpoints every checkpoint_every steps and at the end, and
  // report.html with each checkpoint. quiet: no progress line.
  void Run(std::optional<int64_t> stop_at = std::nullopt, bool quiet = false);

  // Writes the HF checkpoint, the trainer state and the report into config.out.
  void SaveCheckpoint();

  int64_t step() const { return step_; }
  const ParameterSet<float>& params() const { return params_; }
  TrainModel<float>& model() { return *model_; }

  // Times every later Step's ops, the optimizer included, into `profile` (ops_profile.h);
  // nullptr stops timing.
  void set_profile(OpProfile* profile);

 private:
  TrainConfig config_;
  ParameterSet<float>& params_;
  DataSource& data_;
  ThreadPool& pool_;
  std::string tokenizer_json_;
  std::unique_ptr<TrainModel<float>> model_;
  AdamW optimizer_;
  TokenBatch batch_;
  int64_t step_ = 0;
  int64_t batches_drawn_ = 0;
  double elapsed_before_ = 0;  // seconds trained before a resume
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<MetricsWriter> metrics_;
  OpProfile* profile_ = nullptr;
};

}  // namespace whale
