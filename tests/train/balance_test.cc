// Aux-loss-free load balancing (training.md section 2): on a skewed token stream, the bias
// update γ·sign(mean − load) lowers the max/mean expert load that routing without it keeps.
#include <gtest/gtest.h>

#include "train/trainer.h"
#include "train_model_testing.h"

namespace whale {
namespace {

using testing::MicroConfig;
using testing::RandomTokenSource;
using testing::TempDir;

// max / mean of the expert loads of one MoE layer.
double Imbalance(const nlohmann::json& load) {
  double max = 0, sum = 0;
  for (int64_t c : load) {
    max = std::max(max, static_cast<double>(c));
    sum += static_cast<double>(c);
  }
  return max / (sum / static_cast<double>(load.size()));
}

// Mean over the last `window` steps and all MoE layers of max/mean load.
struct Figures {
  double first = 0, last = 0;
};

Figures TrainSkewed(double gamma) {
  const ModelConfig config = MicroConfig(64);
  ThreadPool pool(2);
  ParameterSet<float> params(config);
  InitializeParameters(params, 12);
  // Skewed: 3 distinct tokens, so few hidden states and a few favoured experts.
  RandomTokenSource data(64, 1, /*distinct=*/3);
  TrainConfig c;
  c.init_preset = "micro";
  c.out = TempDir("balance");
  c.steps = 40;
  c.seq_len = 16;
  c.batch_tokens = 64;
  c.schedule.peak_lr = 1e-3;
  c.loss.balance_alpha = 0;  // the bias alone
  c.loss.bias_gamma = gamma;
  c.loss.gamma_off = 1.0;
  Trainer trainer(c, params, data, pool, "");
  Figures f;
  const int window = 5;
  for (int64_t step = 0; step < c.steps; ++step) {
    const nlohmann::json row = trainer.Step();
    double imbalance = 0;
    for (const auto& layer : row.at("expert_load")) imbalance += Imbalance(layer);
    imbalance /= static_cast<double>(row.at("expert_load").size());
    if (step < window) f.first += imbalance / window;
    if (step >= c.steps - window) f.last += imbalance / window;
  }
  return f;
}

TEST(Balance, BiasUpdateLowersMaxOverMeanLoad) {
  const Figures off = TrainSkewed(0.0);
  const Figures on = TrainSkewed(0.02);
  std::printf(
      "max/mean expert load, mean of MoE layers, first 5 -> last 5 of 40 steps:\n"
      "  gamma = 0:    %.3f -> %.3f\n  gamma = 0.02: %.3f -> %.3f\n",
      off.first, off.last, on.first, on.last);
  EXPECT_LT(on.last, off.last);
  EXPECT_LT(on.last, on.first);
  // 2 of 8 experts per token: perfect balance is 1, all load on the top 2 experts is 4.
  EXPECT_GT(off.last, 1.5);
}

}  // namespace
}  // namespace whale
