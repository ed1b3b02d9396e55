// AdamW with clipping against a scalar transcription of torch.optim.AdamW and
// clip_grad_norm_, and the training config's JSON round trip and errors.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/presets.h"
#include "train/train_config.h"
#include "util/error.h"

namespace whale {
namespace {

ModelConfig Tiny() {
  ModelConfig c = FindPreset("tiny-v3").config;
  c.num_hidden_layers = 2;
  c.vocab_size = 33;
  return c;
}

// The reference: one parameter element through `steps` AdamW steps with a given gradient
// sequence and clip coefficients, in double.
struct ScalarAdam {
  double p, m = 0, v = 0;
  int t = 0;
  void Step(double g, double lr, double wd, const OptimizerConfig& o) {
    ++t;
    p *= 1 - lr * wd;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double mhat = m / (1 - std::pow(o.beta1, t));
    const double vhat = v / (1 - std::pow(o.beta2, t));
    p -= lr * mhat / (std::sqrt(vhat) + o.eps);
  }
};

TEST(AdamW, MatchesScalarReferenceWithClippingAndDecayMask) {
  ParameterSet<float> params(Tiny());
  InitializeParameters(params, 3);
  OptimizerConfig o;
  AdamW adam(o, params);
  // Reference copies of a few elements: a matrix, a norm and the balancing bias.
  const std::vector<std::string> names = {"model.layers.0.self_attn.kv_b_proj.weight",
                                          "model.layers.0.input_layernorm.weight",
                                          "model.layers.1.mlp.gate.e_score_correction_bias"};
  std::vector<ScalarAdam> ref;
  for (const auto& name : names) ref.push_back({params.at(name).value[5]});
  const double lr = 3e-3;
  for (int step = 0; step < 5; ++step) {
    // Gradients g = 0.01 * (i % 7 - 3) * (step + 1): large enough at step >= 2 to be clipped.
    double sum = 0;
    for (auto& p : params.all())
      for (int64_t i = 0; i < p.numel(); ++i) {
        p.grad[i] = p.trainable() ? 0.01f * static_cast<float>((i % 7) - 3) * (step + 1) : 0.0f;
        sum += static_cast<double>(p.grad[i]) * p.grad[i];
      }
    const double norm = std::sqrt(sum);
    const double clip = std::min(1.0, o.clip_norm / (norm + 1e-6));
    if (step >= 2) {
      EXPECT_LT(clip, 1.0);
    }
    EXPECT_NEAR(adam.Step(params, lr, nullptr), norm, norm * 1e-12);
    for (size_t k = 0; k < names.size(); ++k) {
      const Parameter<float>& p = params.at(names[k]);
      if (!p.trainable()) continue;
      const double g = static_cast<double>(0.01f * static_cast<float>((5 % 7) - 3) * (step + 1));
      ref[k].Step(g * clip, lr, p.decays() ? o.weight_decay : 0.0, o);
    }
  }
  // F32 storage of the moments and the parameter rounds each step: a few ulps of the values.
  EXPECT_NEAR(params.at(names[0]).value[5], ref[0].p, 1e-6);
  EXPECT_NEAR(params.at(names[1]).value[5], ref[1].p, 1e-6);
  // The balancing bias is never touched by the optimizer.
  EXPECT_EQ(params.at(names[2]).value[5], ref[2].p);
  // Norms do not decay: with a zero gradient a matrix shrinks, a norm weight stays.
  EXPECT_TRUE(params.at(names[0]).decays());
  EXPECT_FALSE(params.at(names[1]).decays());
}

TEST(AdamW, ThreadsDoNotChangeResults) {
  ParameterSet<float> a(Tiny()), b(Tiny());
  InitializeParameters(a, 1);
  InitializeParameters(b, 1);
  AdamW adam_a(OptimizerConfig{}, a), adam_b(OptimizerConfig{}, b);
  ThreadPool pool(2);
  for (int step = 0; step < 3; ++step) {
    for (auto* set : {&a, &b})
      for (auto& p : set->all())
        for (int64_t i = 0; i < p.numel(); ++i) p.grad[i] = 1e-3f * static_cast<float>(i % 5);
    adam_a.Step(a, 1e-3, nullptr);
    adam_b.Step(b, 1e-3, &pool);
  }
  for (size_t i = 0; i < a.all().size(); ++i) ASSERT_EQ(a.all()[i].value, b.all()[i].value);
}

TEST(TrainConfig, JsonRoundTripAndErrors) {
  TrainConfig c;
  nlohmann::json j = {{"steps", 7},
                      {"precision", "fp8"},
                      {"schedule", {{"peak_lr", 0.002}}},
                      {"loss", {{"bias_gamma", 0.0}}},
                      {"model_overrides", {{"hidden_size", 64}}}};
  ApplyTrainConfigJson(c, j, "test.json");
  EXPECT_EQ(c.steps, 7);
  EXPECT_EQ(c.precision, Precision::kFP8);
  EXPECT_EQ(c.schedule.peak_lr, 0.002);
  EXPECT_EQ(c.loss.bias_gamma, 0.0);
  EXPECT_EQ(c.model_overrides["hidden_size"], 64);
  TrainConfig d;
  ApplyTrainConfigJson(d, TrainConfigToJson(c), "round trip");
  EXPECT_EQ(TrainConfigToJson(d), TrainConfigToJson(c));
  const auto message = [](const nlohmann::json& bad) {
    TrainConfig e;
    try {
      ApplyTrainConfigJson(e, bad, "cfg.json");
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({{"stepz", 1}}), "cfg.json: unknown field \"stepz\"");
  EXPECT_EQ(message({{"steps", "ten"}}),
            "cfg.json: field \"steps\" is \"ten\"; expected an integer");
  EXPECT_EQ(message({{"schedule", {{"peak", 1}}}}), "cfg.json: unknown field \"schedule.peak\"");
  TrainConfig v;
  v.init_preset = "tiny-v3";
  v.seq_len = 10;
  v.batch_tokens = 25;
  EXPECT_THROW(ValidateTrainConfig(v), Error);
  v.batch_tokens = 40;
  ValidateTrainConfig(v);
}

}  // namespace
}  // namespace whale
