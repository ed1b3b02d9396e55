// The trainer against the independent PyTorch reference (tests/data/train/README.md): step-0
// losses, expert loads and every parameter gradient of tiny-v3 on a fixed batch, then the losses
// and gradient norms of 10 AdamW steps with clipping and bias balancing, and the final biases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../test_temp.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "train/trainer.h"

namespace whale {
namespace {

namespace fs = std::filesystem;

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t Fnv1a64(const std::string& path) {
  const MappedFile file(path);
  uint64_t h = 0xCBF29CE484222325ULL;
  for (uint8_t b : file.bytes()) h = (h ^ b) * 0x100000001B3ULL;
  return h;
}

// The same batch every step, as the reference trains.
class FixedBatchSource : public DataSource {
 public:
  explicit FixedBatchSource(TokenBatch batch) : batch_(std::move(batch)) {}
  void Next(TokenBatch& batch) override { batch = batch_; }
  std::string Describe() const override { return "fixture batch"; }

 private:
  TokenBatch batch_;
};

struct Fixture {
  nlohmann::json fx;
  std::string checkpoint_dir;
  TokenBatch batch;
};

Fixture LoadFixture(const std::string& folder, const std::string& tag) {
  Fixture f;
  f.fx = nlohmann::json::parse(ReadTextFile(folder + "/fixture.json"));
  EXPECT_EQ(f.fx.at("format"), "whale-train-fixture");
  EXPECT_EQ(f.fx.at("version"), 1);
  const auto& made = f.fx.at("checkpoint");
  f.checkpoint_dir = testing::TestTempDir("train-ref" + tag);
  ThreadPool pool(2);
  RandomCheckpointOptions options;
  options.storage = ParseStorageType(made.at("dtype"));
  options.seed = made.at("seed");
  WriteRandomCheckpoint(FindPreset(made.at("preset")).config, options, f.checkpoint_dir, pool);
  char digest[17];
  std::snprintf(digest, sizeof(digest), "%016llx",
                static_cast<unsigned long long>(Fnv1a64(f.checkpoint_dir + "/model.safetensors")));
  EXPECT_EQ(std::string(digest), made.at("model_safetensors_fnv1a64"))
      << "`" << made.at("command").get<std::string>()
      << "` no longer writes the checkpoint the fixture was made from";
  const auto& b = f.fx.at("batch");
  f.batch.n_seqs = b.at("n_seqs");
  f.batch.seq_len = b.at("seq_len");
  for (const auto& row : b.at("inputs"))
    for (int v : row) f.batch.inputs.push_back(v);
  for (const auto& row : b.at("targets"))
    for (int v : row) f.batch.targets.push_back(v);
  for (const auto& row : b.at("segments"))
    for (int v : row) f.batch.segments.push_back(v);
  return f;
}

// The run of the fixture as a training config: constant lr, fixed λ, α, γ.
TrainConfig FixtureConfig(const nlohmann::json& hyper, const TokenBatch& batch, bool fp8) {
  TrainConfig c;
  c.init_preset = "tiny-v3";
  c.steps = hyper.at("steps");
  c.seq_len = batch.seq_len;
  c.batch_tokens = batch.n_seqs * batch.seq_len;
  c.precision = fp8 ? Precision::kFP8 : Precision::kF32;
  c.schedule.peak_lr = hyper.at("lr");
  c.schedule.warmup = 0;
  c.schedule.decay_start = 1;
  c.schedule.decay_end = 1;
  c.loss.mtp_lambda = c.loss.mtp_lambda_late = hyper.at("lambda_mtp");
  c.loss.balance_alpha = hyper.at("alpha_balance");
  c.loss.bias_gamma = hyper.at("gamma_bias");
  c.loss.gamma_off = 1.0;
  c.optimizer.beta1 = hyper.at("beta1");
  c.optimizer.beta2 = hyper.at("beta2");
  c.optimizer.eps = hyper.at("eps");
  c.optimizer.weight_decay = hyper.at("weight_decay");
  c.optimizer.clip_norm = hyper.at("clip_norm");
  return c;
}

// Tolerances. whale computes in F32, the reference in float64. The reference's own float32 run
// (fixture.self_check.f32_vs_f64) drifts from float64 by <= 6e-7 in the losses, 2e-6 relative
// in the gradient norm and 2.2e-6 of each tensor's largest gradient at step 0; whale's F32 sums in
// other orders, so we allow 10-20x those figures. Expert loads must match exactly: the smallest
// top-k margin of the run (1.3e-4) is ~100x the F32 error of the router scores.
constexpr double kLossAbs = 1e-5;
constexpr double kGradNormRel = 2e-5;
constexpr double kGradRelToMax = 2e-5;

TEST(TrainReference, F32StepZeroGradientsAndTenSteps) {
  const std::string folder = std::string(WHALE_TEST_DATA) + "/train/tiny-v3-f32";
  Fixture f = LoadFixture(folder, "f32");
  const auto& hyper = f.fx.at("hyper");
  ThreadPool pool(2);
  ParameterSet<float> params(LoadModelConfig(f.checkpoint_dir));
  LoadParameters(params, f.checkpoint_dir);

  // Step 0: losses, loads, gradients.
  {
    TrainModel<float> model(params, &pool);
    params.ZeroGrad();
    const LossParts loss = model.Step(
        f.batch, LossWeights{hyper.at("lambda_mtp"), hyper.at("alpha_balance")}, 1.0, true);
    const auto& s0 = f.fx.at("step0");
    EXPECT_NEAR(loss.main, s0.at("loss_main").get<double>(), kLossAbs);
    EXPECT_NEAR(loss.mtp, s0.at("loss_mtp").get<double>(), kLossAbs);
    EXPECT_NEAR(loss.balance, s0.at("loss_balance").get<double>(), 1e-9);
    EXPECT_NEAR(loss.total, s0.at("loss").get<double>(), kLossAbs);
    EXPECT_EQ(loss.main_count, s0.at("n_main_targets").get<int64_t>());
    EXPECT_EQ(loss.mtp_count, s0.at("n_mtp_targets").get<int64_t>());
    EXPECT_EQ(model.expert_load_layers(), s0.at("expert_load_layers").get<std::vector<int64_t>>());
    EXPECT_EQ(model.expert_load(), s0.at("expert_load").get<std::vector<std::vector<int64_t>>>());
    const Checkpoint grads = Checkpoint::Open(folder);
    int compared = 0;
    double worst = 0;
    for (const auto& p : params.all()) {
      if (!p.trainable()) continue;
      ASSERT_TRUE(grads.Has(p.name)) << p.name;
      const Tensor g = grads.Get(p.name);
      const float* ref = g.data_as<float>();
      double ref_max = 0, diff = 0;
      for (int64_t i = 0; i < p.numel(); ++i) {
        ref_max = std::max(ref_max, std::fabs(static_cast<double>(ref[i])));
        diff = std::max(diff, std::fabs(static_cast<double>(p.grad[i]) - ref[i]));
      }
      if (ref_max == 0) {
        EXPECT_EQ(diff, 0) << p.name << ": the reference gradient is exactly 0";
        continue;
      }
      worst = std::max(worst, diff / ref_max);
      EXPECT_LE(diff, kGradRelToMax * ref_max) << p.name;
      ++compared;
    }
    std::printf("step 0: %d gradients, worst max|Δ| / max|g| = %.3g\n", compared, worst);
    EXPECT_NEAR(GlobalGradNorm(params), s0.at("grad_norm").get<double>(),
                kGradNormRel * s0.at("grad_norm").get<double>());
  }

  // 10 steps through the Trainer: total loss and pre-clip norm of each step, then the biases.
  FixedBatchSource source(f.batch);
  Trainer trainer(FixtureConfig(hyper, f.batch, false), params, source, pool, "");
  const auto losses = f.fx.at("losses").get<std::vector<double>>();
  const auto norms = f.fx.at("grad_norms").get<std::vector<double>>();
  double worst_loss = 0;
  for (size_t k = 0; k < losses.size(); ++k) {
    const nlohmann::json row = trainer.Step();
    worst_loss = std::max(worst_loss, std::fabs(row.at("loss").get<double>() - losses[k]));
    EXPECT_NEAR(row.at("loss").get<double>(), losses[k], kLossAbs) << "step " << k;
    EXPECT_NEAR(row.at("grad_norm").get<double>(), norms[k], kGradNormRel * norms[k])
        << "step " << k;
    EXPECT_EQ(row.at("expert_load"), f.fx.at("steps")[k].at("expert_load")) << "step " << k;
  }
  std::printf("10 steps: worst |Δloss| = %.3g\n", worst_loss);
  for (const auto& [layer, bias] : f.fx.at("final").at("e_score_correction_bias").items()) {
    const auto& p = params.at("model.layers." + layer + ".mlp.gate.e_score_correction_bias");
    const auto ref = bias.get<std::vector<double>>();
    for (size_t e = 0; e < ref.size(); ++e)
      EXPECT_NEAR(p.value[e], ref[e], 1e-6) << "layer " << layer << " expert " << e;
  }
}

// The FP8 recipe (tests/data/train/README.md "The FP8 case"): e4m3 rounding is a step function,
// so F32 and float64 runs quantize a few elements differently and then route a few tokens
// differently (whale moves 3 of 192 routed tokens at step 0); the reference measured its own
// float32 FP8 run against float64 (self_check.fp8_f32_vs_f64.loss_max_abs_per_step: 0.001 to
// 0.07, chaotic from step 1 on as routing differences feed back through the updates). We allow 3x
// that drift at step 0 (forward only) and 1.5x its maximum for the later steps, and check that
// the F32 and FP8 runs do differ at step 0.
TEST(TrainReference, Fp8RecipeLossesWithinTheReferenceOwnF32Drift) {
  const std::string folder = std::string(WHALE_TEST_DATA) + "/train/tiny-v3-f32-fp8";
  Fixture f = LoadFixture(folder, "fp8");
  ASSERT_TRUE(f.fx.at("fp8").get<bool>());
  const auto& hyper = f.fx.at("hyper");
  ThreadPool pool(2);
  ParameterSet<float> params(LoadModelConfig(f.checkpoint_dir));
  LoadParameters(params, f.checkpoint_dir);
  const auto drift = f.fx.at("self_check")
                         .at("fp8_f32_vs_f64")
                         .at("loss_max_abs_per_step")
                         .get<std::vector<double>>();
  const auto losses = f.fx.at("losses").get<std::vector<double>>();
  const auto plain =
      f.fx.at("self_check").at("fp8_vs_plain").at("plain_losses").get<std::vector<double>>();
  FixedBatchSource source(f.batch);
  Trainer trainer(FixtureConfig(hyper, f.batch, true), params, source, pool, "");
  for (size_t k = 0; k < losses.size(); ++k) {
    const nlohmann::json row = trainer.Step();
    const double loss = row.at("loss").get<double>();
    if (k == 0) {
      int64_t moved = 0;  // tokens routed differently from the reference, over all MoE layers
      const auto& ref = f.fx.at("step0").at("expert_load");
      for (size_t l = 0; l < ref.size(); ++l)
        for (size_t e = 0; e < ref[l].size(); ++e)
          moved += std::abs(row.at("expert_load")[l][e].get<int64_t>() - ref[l][e].get<int64_t>());
      std::printf("step 0: main %.5f (ref %.5f), mtp %.5f (ref %.5f), load differences %lld\n",
                  row.at("loss_main").get<double>(), f.fx.at("step0").at("loss_main").get<double>(),
                  row.at("loss_mtp").get<double>(), f.fx.at("step0").at("loss_mtp").get<double>(),
                  static_cast<long long>(moved));
    }
    std::printf("step %zu: fp8 loss %.5f, reference %.5f (plain %.5f)\n", k, loss, losses[k],
                plain[k]);
    const double max_drift = *std::max_element(drift.begin(), drift.end());
    EXPECT_NEAR(loss, losses[k], k == 0 ? 3 * drift[0] : 1.5 * max_drift) << "step " << k;
    if (k == 0) {
      EXPECT_NE(loss, plain[0]);
    }
  }
}

}  // namespace
}  // namespace whale
