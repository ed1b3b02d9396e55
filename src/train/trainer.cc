#include "train/trainer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "train/report.h"
#include "train/schedule.h"
#include "train/train_checkpoint.h"
#include "util/error.h"
#include "util/progress.h"

namespace whale {
Trainer::Trainer(const TrainConfig& config, ParameterSet<float>& params, DataSource& data,
                 ThreadPool& pool, std::string tokenizer_json)
    : config_(config),
      params_(params),
      data_(data),
      pool_(pool),
      tokenizer_json_(std::move(tokenizer_json)),
      model_(std::make_unique<TrainModel<float>>(params, &pool, config.precision)),
      optimizer_(config.optimizer, params) {
  ValidateTrainConfig(config_);
  batch_.n_seqs = config_.micro_seqs();
  batch_.seq_len = config_.seq_len;
  start_ = std::chrono::steady_clock::now();
}

Trainer::~Trainer() = default;

void Trainer::Resume() {
  LoadParameters(params_, config_.out);
  const TrainerState state = LoadTrainerState(config_.out, optimizer_, params_);
  step_ = state.step;
  elapsed_before_ = state.elapsed_s;
  for (; batches_drawn_ < state.batches_drawn; ++batches_drawn_) data_.Next(batch_);
  metrics_ = std::make_unique<MetricsWriter>(config_.out + "/metrics.jsonl", step_);
}

nlohmann::json Trainer::Step() {
  const auto begin = std::chrono::steady_clock::now();
  const int64_t micro = config_.accumulation();
  LossWeights weights;
  weights.mtp_lambda = MtpLambda(config_.loss, step_, config_.steps);
  weights.balance_alpha = config_.loss.balance_alpha;
  {
    const OpTimer timer(profile_, "zero grad");
    params_.ZeroGrad();
  }
  LossParts sum;
  std::vector<std::vector<int64_t>> load;
  for (int64_t m = 0; m < micro; ++m) {
    batch_.n_seqs = config_.micro_seqs();
    batch_.seq_len = config_.seq_len;
    data_.Next(batch_);
    ++batches_drawn_;
    const LossParts loss = model_->Step(batch_, weights, 1.0 / static_cast<double>(micro), true);
    sum.total += loss.total / static_cast<double>(micro);
    sum.main += loss.main / static_cast<double>(micro);
    sum.mtp += loss.mtp / static_cast<double>(micro);
    sum.balance += loss.balance / static_cast<double>(micro);
    const auto& step_load = model_->expert_load();
    if (load.empty()) load.assign(step_load.size(), std::vector<int64_t>());
    for (size_t l = 0; l < step_load.size(); ++l) {
      load[l].resize(step_load[l].size(), 0);
      for (size_t e = 0; e < step_load[l].size(); ++e) load[l][e] += step_load[l][e];
    }
  }
  const double lr = LearningRate(config_.schedule, step_, config_.steps);
  double grad_norm = 0;
  {
    const OpTimer timer(profile_, "optimizer");
    grad_norm = optimizer_.Step(params_, lr, &pool_);
  }

  // Aux-loss-free balancing: b_i += γ · sign(mean load − load_i), per MoE layer with a bias.
  const double gamma = BiasGamma(config_.loss, step_, config_.steps);
  const auto& layers = model_->expert_load_layers();
  for (size_t l = 0; l < layers.size() && gamma > 0; ++l) {
    const std::string name =
        "model.layers." + std::to_string(layers[l]) + ".mlp.gate.e_score_correction_bias";
    if (!params_.has(name)) continue;
    std::vector<float>& bias = params_.at(name).value;
    double mean = 0;
    for (int64_t c : load[l]) mean += static_cast<double>(c);
    mean /= static_cast<double>(load[l].size());
    for (size_t e = 0; e < bias.size(); ++e) {
      const double gap = mean - static_cast<double>(load[l][e]);
      const double sign = gap > 0 ? 1.0 : gap < 0 ? -1.0 : 0.0;
      bias[e] = static_cast<float>(bias[e] + gamma * sign);
    }
  }
  ++step_;
  const double step_s = SecondsOf(std::chrono::steady_clock::now() - begin);
  const double tokens = static_cast<double>(config_.batch_tokens);
  nlohmann::json row = {
      {"step", step_},
      {"loss", sum.total},
      {"loss_main", sum.main},
      {"loss_mtp", sum.mtp},
      {"loss_balance", sum.balance},
      {"lr", lr},
      {"grad_norm", grad_norm},
      {"tokens_per_s", step_s > 0 ? tokens / step_s : 0.0},
      {"elapsed_s", elapsed_before_ + SecondsOf(std::chrono::steady_clock::now() - start_)},
      {"expert_load", load},
      {"expert_load_layers", layers}};
  return row;
}

void Trainer::set_profile(OpProfile* profile) {
  profile_ = profile;
  model_->set_profile(profile);
}

void Trainer::SaveCheckpoint() {
  const DType dtype = config_.save_dtype == "bf16" ? DType::BF16 : DType::F32;
  SaveModelCheckpoint(config_.out, params_, dtype, tokenizer_json_);
  TrainerState state;
  state.step = step_;
  state.batches_drawn = batches_drawn_;
  state.elapsed_s = elapsed_before_ + SecondsOf(std::chrono::steady_clock::now() - start_);
  state.config = TrainConfigToJson(config_);
  SaveTrainerState(config_.out, state, optimizer_, params_, dtype != DType::F32);
  const std::string metrics_path = config_.out + "/metrics.jsonl";
  if (std::filesystem::exists(metrics_path)) {
    const ModelConfig& c = params_.config();
    nlohmann::json info = {{"model", config_.init_preset.empty() ? config_.model_dir
                                                                 : "preset " + config_.init_preset},
                           {"parameters", params_.numel()},
                           {"layers", c.num_hidden_layers},
                           {"hidden", c.hidden_size},
                           {"experts", c.n_routed_experts},
                           {"data", data_.Describe()},
                           {"steps", config_.steps},
                           {"batch_tokens", config_.batch_tokens},
                           {"seq_len", config_.seq_len},
                           {"precision", PrecisionName(config_.precision)},
                           {"peak_lr", config_.schedule.peak_lr},
                           {"seed", config_.seed}};
    WriteTrainingReport(config_.out + "/report.html", ReadMetrics(metrics_path),
                        "whale train: " + config_.out, info);
  }
}

void Trainer::Run(std::optional<int64_t> stop_at, bool quiet) {
  std::filesystem::create_directories(config_.out);
  if (!metrics_) metrics_ = std::make_unique<MetricsWriter>(config_.out + "/metrics.jsonl");
  const int64_t last = std::min(config_.steps, stop_at.value_or(config_.steps));
  const bool tty = isatty(fileno(stderr)) != 0;
  const int64_t first = step_;
  const auto run_start = std::chrono::steady_clock::now();
  while (step_ < last) {
    const nlohmann::json row = Step();
    if (step_ % config_.log_every == 0 || step_ == last) metrics_->Write(row);
    if (!quiet && (tty || step_ % config_.log_every == 0 || step_ == last)) {
      const double spent = SecondsOf(std::chrono::steady_clock::now() - run_start);
      const double eta =
          spent / static_cast<double>(step_ - first) * static_cast<double>(last - step_);
      std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  %s tok/s  ETA %s%s", tty ? "\r" : "",
                   static_cast<long long>(step_), static_cast<long long>(config_.steps),
                   row["loss"].get<double>(),
                   HumanAmount(row["tokens_per_s"].get<double>(), "").c_str(),
                   FormatDuration(eta).c_str(), tty ? "   " : "\n");
    }
    if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0 && step_ < last)
      SaveCheckpoint();
  }
  if (!quiet && tty) std::fprintf(stderr, "\n");
  SaveCheckpoint();
}

}  // namespace whale
