// The training model: its forward equals the inference Model's on the same checkpoint, and its
// backward equals finite differences of its forward in double precision.
#include "train/train_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "../test_temp.h"
#include "model/model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "train/train_checkpoint.h"
#include "util/error.h"

namespace whale {
namespace {

std::string TempDir(const std::string& name) {
  return testing::TestTempDir("train-model-" + name);
}

// Rows of random tokens; targets are the next input (the last one random); segments as given.
TokenBatch RandomBatch(int64_t n_seqs, int64_t seq_len, int64_t vocab, uint64_t seed,
                       std::vector<int32_t> segments = {}) {
  std::mt19937_64 rng(seed);
  TokenBatch b;
  b.n_seqs = n_seqs;
  b.seq_len = seq_len;
  const int64_t n = n_seqs * seq_len;
  b.inputs.resize(n);
  b.targets.resize(n);
  for (int64_t t = 0; t < n; ++t) b.inputs[t] = static_cast<int32_t>(rng() % vocab);
  for (int64_t t = 0; t < n; ++t)
    b.targets[t] = (t + 1) % seq_len != 0 ? b.inputs[t + 1] : static_cast<int32_t>(rng() % vocab);
  b.segments = segments.empty() ? std::vector<int32_t>(n, 0) : segments;
  return b;
}

// Training forward vs Model::Forward / ForwardMtp (naive attention) on the checkpoint the
// trainer writes: same weights, same F32 kernels for norms and RoPE; they differ in the order of
// the sums inside matrix products and attention. Each of the ~25 chained F32 ops contributes a
// relative error of at most ~k·2^-24 with k <= 640 (the longest inner dimension), about 4e-5;
// norms renormalize, so errors add rather than compound: 25 · 4e-5 = 1e-3 of the logit scale
// bounds the difference. Observed differences are far smaller (printed).
TEST(TrainModel, ForwardMatchesInferenceModel) {
  const std::string init_dir = TempDir("init");
  ThreadPool pool(2);
  RandomCheckpointOptions options;
  options.storage = StorageType::kF32;
  options.seed = 7;
  const ModelConfig config =
      WriteRandomCheckpoint(FindPreset("tiny-v3").config, options, init_dir, pool);
  ParameterSet<float> params(config);
  LoadParameters(params, init_dir);
  // The trainer's checkpoint: MTP's embedding and head copies equal the main ones.
  const std::string dir = TempDir("saved");
  SaveModelCheckpoint(dir, params, DType::F32, "");

  const int64_t B = 2, L = 24, V = config.vocab_size, d = config.hidden_size;
  const TokenBatch batch = RandomBatch(B, L, V, 5);
  TrainModel<float> train(params, &pool);
  const LossParts loss = train.Step(batch, LossWeights{}, 1.0, /*backward=*/false);
  EXPECT_TRUE(std::isfinite(loss.total));

  const Weights weights = Weights::Load(dir);
  ModelOptions model_options;
  model_options.max_batch_tokens = L;
  model_options.max_context = L;
  model_options.attention = AttentionForm::kNaive;
  Model model(weights, pool, model_options);
  double max_diff = 0, max_logit = 0, max_mtp_diff = 0;
  for (int64_t b = 0; b < B; ++b) {
    KvCache cache = model.NewCache(L);
    const std::span<const int32_t> tokens(batch.inputs.data() + b * L, L);
    SequenceChunk chunk{&cache, tokens, true};
    std::vector<float> logits(L * V), hidden(L * d);
    model.Forward(std::span<const SequenceChunk>(&chunk, 1), logits, hidden);
    for (int64_t i = 0; i < L * V; ++i) {
      max_diff = std::max(
          max_diff, std::fabs(static_cast<double>(logits[i]) - train.logits()[b * L * V + i]));
      max_logit = std::max(max_logit, std::fabs(static_cast<double>(logits[i])));
    }
    // MTP: chunk tokens t_{i+1}, hidden states h_i, for i < L - 1.
    KvCache mtp_cache = model.NewMtpCache(L);
    SequenceChunk mtp_chunk{&mtp_cache, tokens.subspan(1), true};
    std::vector<float> mtp_logits((L - 1) * V);
    model.ForwardMtp(std::span<const SequenceChunk>(&mtp_chunk, 1),
                     std::span<const float>(hidden.data(), (L - 1) * d), mtp_logits);
    for (int64_t i = 0; i < (L - 1) * V; ++i)
      max_mtp_diff = std::max(max_mtp_diff, std::fabs(static_cast<double>(mtp_logits[i]) -
                                                      train.mtp_logits()[b * (L - 1) * V + i]));
  }
  std::printf("max |logit| %.3f, max |Δ| main %.3g, MTP %.3g\n", max_logit, max_diff, max_mtp_diff);
  EXPECT_LT(max_diff, 1e-3 * max_logit);
  EXPECT_LT(max_mtp_diff, 1e-3 * max_logit);
}

// A pseudo-random direction per tensor (unit L2 norm).
std::vector<double> Direction(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  double norm = 0;
  for (double& x : v) {
    x = normal(rng);
    norm += x * x;
  }
  for (double& x : v) x /= std::sqrt(norm);
  return v;
}

// Central differences of the double-precision forward along a random direction per tensor equal
// the backward's directional derivative g·v. Step h = 1e-4 on unit directions: truncation error
// ~h²·|L'''| ~ 1e-8 and rounding ~1e-16 / h ~ 1e-12, so a relative error above 1e-5 means a wrong
// gradient. MoE routing is away from ties (the perturbation changes logits by ~1e-4, far below
// the top-k margins of this batch: a flip would show as an O(1/h) error). Every loss term is
// active: MTP (lambda 0.3), balance (alpha 0.1, large enough to matter), and a row with two
// documents.
TEST(TrainModel, GradientsMatchFiniteDifferencesInDouble) {
  ModelConfig config = FindPreset("tiny-v3").config;
  config.vocab_size = 96;
  ParameterSet<float> init(config);
  InitializeParameters(init, 21);
  std::mt19937_64 rng(3);
  for (auto& p : init.all())  // a nonzero balancing bias takes part in the selection
    if (!p.trainable())
      for (float& b : p.value) b = static_cast<float>(static_cast<double>(rng() % 1000) * 1e-4);
  ParameterSet<double> params = init.Cast<double>();
  std::vector<int32_t> segments(2 * 9, 0);
  for (int i = 13; i < 18; ++i) segments[i] = 1;  // row 1: documents of 4 and 5 tokens
  TokenBatch batch = RandomBatch(2, 9, config.vocab_size, 8, segments);
  batch.targets[3] = -1;
  const LossWeights weights{0.3, 0.1};
  TrainModel<double> model(params, nullptr);
  const LossParts base = model.Step(batch, weights, 1.0, true);
  EXPECT_GT(base.mtp, 0);
  EXPECT_GT(base.balance, 0);

  int checked = 0;
  double worst = 0;
  for (auto& p : params.all()) {
    if (!p.trainable()) continue;
    // Every tensor outside the routed experts, and experts 0 and 5 of each MoE layer.
    const auto expert = p.name.find(".experts.");
    if (expert != std::string::npos) {
      const std::string rest = p.name.substr(expert + 9);
      if (rest.rfind("0.", 0) != 0 && rest.rfind("5.", 0) != 0) continue;
    }
    const std::vector<double> v = Direction(p.numel(), std::hash<std::string>{}(p.name));
    double analytic = 0;
    for (int64_t i = 0; i < p.numel(); ++i) analytic += p.grad[i] * v[i];
    const std::vector<double> saved = p.value;
    const double h = 1e-4;
    double f[2];
    for (int side = 0; side < 2; ++side) {
      for (int64_t i = 0; i < p.numel(); ++i) p.value[i] = saved[i] + (side ? -h : h) * v[i];
      f[side] = model.Step(batch, weights, 1.0, false).total;
    }
    p.value = saved;
    const double numeric = (f[0] - f[1]) / (2 * h);
    const double error = std::fabs(numeric - analytic) / std::max(std::fabs(analytic), 1e-6);
    worst = std::max(worst, error);
    EXPECT_LT(error, 1e-5) << p.name << ": analytic " << analytic << " numeric " << numeric;
    ++checked;
  }
  std::printf("checked %d tensors, worst relative error %.3g\n", checked, worst);
  EXPECT_GT(checked, 50);
}

TEST(TrainModel, RejectsMalformedBatches) {
  ModelConfig config = FindPreset("tiny-v3").config;
  config.vocab_size = 40;
  ParameterSet<float> params(config);
  InitializeParameters(params, 1);
  TrainModel<float> model(params, nullptr);
  TokenBatch batch = RandomBatch(1, 4, 40, 1);
  batch.inputs[2] = 40;
  try {
    model.Step(batch, LossWeights{}, 1.0, false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "training batch: input token 40 at row 0 position 2 is outside the vocabulary "
                 "[0, 40)");
  }
  batch = RandomBatch(1, 4, 40, 1);
  batch.segments.pop_back();
  EXPECT_THROW(model.Step(batch, LossWeights{}, 1.0, false), Error);
}

}  // namespace
}  // namespace whale
