// GRPO: the loss and its gradient on a toy tabular-softmax policy for every variant, against a
// direct computation from the formulas (training.md 5) and central differences; the weighted
// cross-entropy that carries the policy gradient through the model; and short end-to-end runs on a
// tiny random model.
#include "train/grpo.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "train/grpo_loss.h"
#include "train/metrics.h"
#include "train/ops_loss.h"
#include "train/train_checkpoint.h"
#include "train/train_model.h"
#include "train_model_testing.h"

namespace whale {
namespace {

// ---- Toy policy: π(a | s) = softmax(z[s])[a], S states x V actions. ----

constexpr int kStates = 3, kActions = 4;
using Table = std::vector<double>;  // [kStates, kActions]

double LogProb(const Table& z, int s, int a) {
  double max = z[s * kActions];
  for (int b = 1; b < kActions; ++b) max = std::max(max, z[s * kActions + b]);
  double sum = 0;
  for (int b = 0; b < kActions; ++b) sum += std::exp(z[s * kActions + b] - max);
  return z[s * kActions + a] - max - std::log(sum);
}

struct Token {
  int state, action;
};

// Two groups of three completions of 2-4 tokens with fixed (state, action) paths and rewards.
struct ToyRollout {
  std::vector<std::vector<Token>> completions;  // [B][|o_i|]
  std::vector<double> rewards;                  // [B]
  int group_size = 3;
  Table z, z_old, z_ref;
};

ToyRollout MakeToy() {
  ToyRollout t;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  const int lengths[6] = {3, 2, 4, 2, 4, 3};
  for (int i = 0; i < 6; ++i) {
    std::vector<Token> c;
    for (int k = 0; k < lengths[i]; ++k)
      c.push_back({static_cast<int>(rng() % kStates), static_cast<int>(rng() % kActions)});
    t.completions.push_back(c);
  }
  t.rewards = {1.0, 0.1, 0.0, 1.1, 1.0, 0.0};
  t.z.resize(kStates * kActions);
  t.z_old.resize(t.z.size());
  t.z_ref.resize(t.z.size());
  // π_old differs from π_θ by up to ±0.8 per logit, so ratios spread over ~[0.3, 3]: some
  // tokens are clipped on either side, others inside the band.
  for (size_t j = 0; j < t.z.size(); ++j) {
    t.z[j] = 2 * u(rng);
    t.z_old[j] = t.z[j] + 0.8 * u(rng);
    t.z_ref[j] = t.z[j] + 0.5 * u(rng);
  }
  return t;
}

struct Variant {
  const char* name;
  AdvantageMode mode;
  GrpoLossOptions options;
};

std::vector<Variant> Variants() {
  GrpoLossOptions grpo;
  grpo.beta = 0.05;
  GrpoLossOptions dapo = grpo;
  dapo.aggregation = LossAggregation::kDapo;
  dapo.eps_hi = 0.28;
  GrpoLossOptions dr = grpo;
  dr.aggregation = LossAggregation::kDrGrpo;
  dr.max_length = 5;
  return {{"grpo", AdvantageMode::kGrpo, grpo},
          {"dapo", AdvantageMode::kGrpo, dapo},
          {"dr-grpo", AdvantageMode::kDrGrpo, dr}};
}

// The loss written out from training.md 5, independently of grpo_loss.cc, and its gradient in z
// by the chain rule done by hand. Returns the loss; fills grad [kStates * kActions] when given
// and counts clipped tokens.
double DirectLoss(const ToyRollout& t, const Table& z, const Variant& v, Table* grad,
                  int* clipped) {
  const int B = static_cast<int>(t.completions.size());
  std::vector<double> adv(B);
  for (int g0 = 0; g0 < B; g0 += t.group_size) {
    double mean = 0, var = 0;
    for (int i = g0; i < g0 + t.group_size; ++i) mean += t.rewards[i] / t.group_size;
    for (int i = g0; i < g0 + t.group_size; ++i)
      var += (t.rewards[i] - mean) * (t.rewards[i] - mean) / t.group_size;
    for (int i = g0; i < g0 + t.group_size; ++i)
      adv[i] = v.mode == AdvantageMode::kDrGrpo ? t.rewards[i] - mean
                                                : (t.rewards[i] - mean) / (std::sqrt(var) + 1e-4);
  }
  int total_tokens = 0;
  for (const auto& c : t.completions) total_tokens += static_cast<int>(c.size());
  if (grad) grad->assign(z.size(), 0.0);
  double loss = 0;
  const double lo = 1 - v.options.eps_lo, hi = 1 + v.options.eps_hi, beta = v.options.beta;
  for (int i = 0; i < B; ++i) {
    const double len = static_cast<double>(t.completions[i].size());
    const double w = v.options.aggregation == LossAggregation::kGrpo   ? 1.0 / (B * len)
                     : v.options.aggregation == LossAggregation::kDapo ? 1.0 / total_tokens
                                                                       : 1.0 / (B * 5.0);
    for (const Token& tok : t.completions[i]) {
      const double l = LogProb(z, tok.state, tok.action);
      const double l_old = LogProb(t.z_old, tok.state, tok.action);
      const double l_ref = LogProb(t.z_ref, tok.state, tok.action);
      const double rho = std::exp(l - l_old);
      const double a = adv[i];
      const double unclipped = rho * a, clipped_term = std::min(std::max(rho, lo), hi) * a;
      const double s = std::min(unclipped, clipped_term);
      const double kl = std::exp(l_ref - l) - (l_ref - l) - 1;
      loss -= w * (s - beta * kl);
      const bool is_clipped = clipped_term < unclipped;
      if (clipped) *clipped += is_clipped;
      if (!grad) continue;
      // dJ/dl = ρA (unclipped) − β(1 − π_ref/π_θ); dl/dz[s][b] = [b = a] − π(b|s).
      const double dj = (is_clipped ? 0.0 : rho * a) - beta * (1 - std::exp(l_ref - l));
      for (int b = 0; b < kActions; ++b) {
        const double p = std::exp(LogProb(z, tok.state, b));
        (*grad)[tok.state * kActions + b] -= w * dj * ((b == tok.action ? 1.0 : 0.0) - p);
      }
    }
  }
  return loss;
}

// The same through the library: GroupAdvantages, GrpoLoss on per-token log-probabilities, then
// the softmax chain rule applied to GrpoLoss's ∂L/∂log π.
double LibraryLoss(const ToyRollout& t, const Variant& v, Table& grad, GrpoLossResult* out) {
  std::vector<double> adv(t.rewards.size());
  for (size_t g0 = 0; g0 < t.rewards.size(); g0 += t.group_size)
    GroupAdvantages(std::span<double>(adv).subspan(g0, t.group_size),
                    std::span<const double>(t.rewards).subspan(g0, t.group_size), v.mode);
  std::vector<double> logp, logp_old, logp_ref;
  std::vector<int64_t> lengths;
  for (const auto& c : t.completions) {
    lengths.push_back(static_cast<int64_t>(c.size()));
    for (const Token& tok : c) {
      logp.push_back(LogProb(t.z, tok.state, tok.action));
      logp_old.push_back(LogProb(t.z_old, tok.state, tok.action));
      logp_ref.push_back(LogProb(t.z_ref, tok.state, tok.action));
    }
  }
  std::vector<double> dlogp(logp.size());
  const GrpoLossResult r =
      GrpoLoss<double>(dlogp, logp, logp_old, logp_ref, adv, lengths, v.options);
  grad.assign(t.z.size(), 0.0);
  size_t k = 0;
  for (const auto& c : t.completions)
    for (const Token& tok : c) {
      for (int b = 0; b < kActions; ++b) {
        const double p = std::exp(LogProb(t.z, tok.state, b));
        grad[tok.state * kActions + b] += dlogp[k] * ((b == tok.action ? 1.0 : 0.0) - p);
      }
      ++k;
    }
  if (out) *out = r;
  return r.loss;
}

// Every variant: library loss and gradient equal the direct computation to rounding (both are
// double sums of ~20 terms of size <= 10: agreement to 1e-12 relative), and central differences
// of the direct loss (h = 1e-6: truncation ~h²·|L'''| ~ 1e-12, rounding ~1e-16/h ~ 1e-10) agree
// with both to 1e-6. No ratio sits within 1e-3 of a clip edge, where the surrogate has a kink and
// differences would straddle it (checked below).
TEST(GrpoToyPolicy, LossAndGradientMatchDirectComputationForEachVariant) {
  const ToyRollout t = MakeToy();
  for (const Variant& v : Variants()) {
    SCOPED_TRACE(v.name);
    Table direct_grad, library_grad;
    int clipped = 0;
    const double direct = DirectLoss(t, t.z, v, &direct_grad, &clipped);
    GrpoLossResult r;
    const double library = LibraryLoss(t, v, library_grad, &r);
    EXPECT_NEAR(library, direct, 1e-12 * std::max(1.0, std::fabs(direct)));
    // Clipping fires on some tokens but not all, and the KL term is active.
    EXPECT_GT(clipped, 0);
    EXPECT_LT(clipped, static_cast<int>(r.n_tokens));
    EXPECT_NEAR(r.clip_fraction, static_cast<double>(clipped) / r.n_tokens, 1e-15);
    EXPECT_GT(r.mean_kl, 0);
    EXPECT_NE(r.mean_ratio, 1.0);
    double max_grad = 0;
    for (double g : direct_grad) max_grad = std::max(max_grad, std::fabs(g));
    ASSERT_GT(max_grad, 1e-3);
    for (size_t j = 0; j < t.z.size(); ++j) {
      EXPECT_NEAR(library_grad[j], direct_grad[j], 1e-12 * max_grad) << "z[" << j << "]";
      Table zp = t.z, zm = t.z;
      const double h = 1e-6;
      zp[j] += h;
      zm[j] -= h;
      const double numeric =
          (DirectLoss(t, zp, v, nullptr, nullptr) - DirectLoss(t, zm, v, nullptr, nullptr)) /
          (2 * h);
      EXPECT_NEAR(numeric, direct_grad[j], 1e-6 * std::max(1.0, max_grad)) << "z[" << j << "]";
    }
  }
  // No ratio near a clip edge (the finite differences above would be meaningless there).
  for (const auto& c : t.completions)
    for (const Token& tok : c) {
      const double rho =
          std::exp(LogProb(t.z, tok.state, tok.action) - LogProb(t.z_old, tok.state, tok.action));
      for (double edge : {0.8, 1.2, 1.28}) EXPECT_GT(std::fabs(rho - edge), 1e-3);
    }
}

// The variants differ where they should: Dr. GRPO's unnormalized advantages and constant
// denominator, DAPO's token-level mean and wider upper clip.
TEST(GrpoToyPolicy, VariantsGiveDifferentLosses) {
  const ToyRollout t = MakeToy();
  std::vector<double> losses;
  for (const Variant& v : Variants()) {
    Table g;
    losses.push_back(LibraryLoss(t, v, g, nullptr));
  }
  EXPECT_NE(losses[0], losses[1]);
  EXPECT_NE(losses[0], losses[2]);
  EXPECT_NE(losses[1], losses[2]);
}

// ---- The weighted cross-entropy that carries ∂L/∂log π into the model. ----

// Weighted CE = Σ_i w_i CE_i and its gradient = Σ_i w_i ∂CE_i/∂z, row by row (computed one row at
// a time through the unweighted mean CE of that row alone). Exact in double up to rounding.
TEST(WeightedCrossEntropy, EqualsSumOfWeightedRowLosses) {
  const int64_t n = 5, vocab = 7;
  std::mt19937_64 rng(4);
  std::normal_distribution<double> normal;
  std::vector<double> logits(n * vocab);
  for (double& x : logits) x = 2 * normal(rng);
  const std::vector<int32_t> targets = {3, -1, 0, 6, 2};
  const std::vector<float> weights = {0.5f, 0.0f, -1.25f, 2.0f, 0.125f};
  std::vector<double> d(n * vocab);
  const CrossEntropyResult r =
      CrossEntropy<double>(d, logits, targets, n, vocab, 1.5, nullptr, weights);
  double expected = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < 0) {
      for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(d[i * vocab + j], 0.0);
      continue;
    }
    std::vector<double> row(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
    std::vector<double> drow(vocab);
    const int32_t target = targets[i];
    const CrossEntropyResult one = CrossEntropy<double>(
        drow, row, std::span<const int32_t>(&target, 1), 1, vocab, 1.0, nullptr);
    expected += weights[i] * one.loss;
    for (int64_t j = 0; j < vocab; ++j)
      EXPECT_NEAR(d[i * vocab + j], 1.5 * weights[i] * drow[j], 1e-14) << i << "," << j;
  }
  EXPECT_NEAR(r.loss, expected, 1e-13);
  EXPECT_EQ(r.n_counted, 4);
  // A weight on an ignored row is a caller bug.
  std::vector<float> bad = weights;
  bad[1] = 1;
  EXPECT_THROW(CrossEntropy<double>(d, logits, targets, n, vocab, 1.0, nullptr, bad), Error);
}

// Through the whole double model: the parameter gradient of a weighted main loss with mixed-sign
// weights matches central differences along a random direction per tensor (h = 1e-4 on unit
// directions, as in model_test: relative error above 1e-5 means a wrong gradient), MTP off
// (lambda 0) and the balance loss on, at logit scale 1 and 1/0.7; and a LogitWeights callback
// gives the same as batch.weights.
TEST(WeightedCrossEntropy, ModelGradientMatchesFiniteDifferences) {
  ModelConfig config = testing::MicroConfig(40);
  ParameterSet<float> init(config);
  InitializeParameters(init, 8);
  ParameterSet<double> params = init.Cast<double>();
  TokenBatch batch;
  batch.n_seqs = 2;
  batch.seq_len = 7;
  std::mt19937_64 rng(6);
  for (int i = 0; i < 14; ++i) {
    batch.inputs.push_back(static_cast<int32_t>(rng() % 40));
    batch.targets.push_back(i % 7 < 3 ? -1 : static_cast<int32_t>(rng() % 40));
    batch.segments.push_back(0);
    const double w = batch.targets.back() < 0 ? 0.0 : (static_cast<double>(rng() % 200) - 100) / 50;
    batch.weights.push_back(static_cast<float>(w));
  }
  TrainModel<double> model(params, nullptr);
  // Plain logits, and logits read at temperature 0.7 (RL sampling at T != 1).
  for (const double scale : {1.0, 1.0 / 0.7}) {
    SCOPED_TRACE(scale);
    const LossWeights weights{0.0, 0.1, scale};
    params.ZeroGrad();
    const LossParts base = model.Step(batch, weights, 1.0, true);
    EXPECT_EQ(base.mtp, 0);
    EXPECT_TRUE(model.mtp_logits().empty());
    std::vector<std::vector<double>> grads;
    for (const auto& p : params.all()) grads.push_back(p.grad);

    // The callback route: weights written between forward and backward.
    TokenBatch unweighted = batch;
    unweighted.weights.clear();
    params.ZeroGrad();
    model.Step(unweighted, weights, 1.0, true,
               [&](std::span<const double> logits, std::span<float> w) {
                 EXPECT_EQ(logits.size(), static_cast<size_t>(14 * 40));
                 std::copy(batch.weights.begin(), batch.weights.end(), w.begin());
               });
    for (size_t i = 0; i < params.all().size(); ++i)
      for (size_t j = 0; j < grads[i].size(); ++j)
        ASSERT_EQ(params.all()[i].grad[j], grads[i][j]) << params.all()[i].name;

    int checked = 0;
    for (size_t pi = 0; pi < params.all().size(); ++pi) {
      auto& p = params.all()[pi];
      if (!p.trainable() || p.name.find(".experts.") != std::string::npos) continue;
      std::mt19937_64 drng(std::hash<std::string>{}(p.name));
      std::normal_distribution<double> normal;
      std::vector<double> v(p.numel());
      double norm = 0;
      for (double& x : v) {
        x = normal(drng);
        norm += x * x;
      }
      double analytic = 0;
      for (int64_t i = 0; i < p.numel(); ++i) analytic += grads[pi][i] * v[i] / std::sqrt(norm);
      const std::vector<double> saved = p.value;
      const double h = 1e-4;
      double f[2];
      for (int side = 0; side < 2; ++side) {
        for (int64_t i = 0; i < p.numel(); ++i)
          p.value[i] = saved[i] + (side ? -h : h) * v[i] / std::sqrt(norm);
        f[side] = model.Step(batch, weights, 1.0, false).total;
      }
      p.value = saved;
      const double numeric = (f[0] - f[1]) / (2 * h);
      EXPECT_LT(std::fabs(numeric - analytic) / std::max(std::fabs(analytic), 1e-6), 1e-5)
          << p.name << ": analytic " << analytic << " numeric " << numeric;
      ++checked;
    }
    EXPECT_GT(checked, 10);
  }
}

// ---- End to end on a tiny random model. ----

// A micro model with the R1-style test tokenizer whose policy ends completions early with
// probability ~0.15 per token: one hidden dimension carries a large constant through the residual
// stream (embedding column 0 = 100), the final norm keeps only that dimension, and the head reads
// it into EOS alone. Completion lengths then vary, and with the overlong penalty over the whole
// budget the rewards of a group differ, so advantages and gradients are nonzero.
std::string TinyPolicyDir() {
  const std::string dir = testing::TempDir("grpo-policy");
  const std::string data = WHALE_TEST_DATA "/serve";
  const Tokenizer tokenizer = Tokenizer::FromModelDir(data);
  ModelConfig config = testing::MicroConfig(tokenizer.vocab_size());
  const int32_t eos = *tokenizer.eos_id();
  config.eos_token_ids = {eos};
  config.bos_token_id = *tokenizer.bos_id();
  ParameterSet<float> params(config);
  InitializeParameters(params, 3);
  const int64_t d = config.hidden_size;
  auto& embed = params.at("model.embed_tokens.weight").value;
  for (int64_t v = 0; v < config.vocab_size; ++v) embed[v * d] = 100;
  auto& norm = params.at("model.norm.weight").value;
  std::fill(norm.begin(), norm.end(), 0.0f);
  norm[0] = 1;
  auto& head = params.at("lm_head.weight").value;
  std::fill(head.begin(), head.end(), 0.0f);
  head[eos * d] = 0.63f;  // logit ≈ 6.9 · 0.63 = 4.3: p(EOS) ≈ e^4.3 / (V + e^4.3) ≈ 0.15
  SaveModelCheckpoint(dir, params, DType::F32, data + "/tokenizer.json");
  return dir;
}

GrpoConfig SmallRun(const std::string& model, const std::string& out, const std::string& variant) {
  GrpoConfig c;
  c.model = model;
  c.tasks = "add:1-2,sort:1";
  c.out = out;
  c.steps = 2;
  c.prompts_per_step = 3;
  c.group_size = 4;
  c.max_tokens = 12;
  c.max_prompt_tokens = 400;
  c.overlong_cache = 12;  // the length term spans the whole budget: rewards vary with length
  c.lr = 3e-3;
  c.warmup_steps = 0;
  c.mini_batches = 2;
  c.beta = 0.04;
  c.variant = variant;
  c.seed = 5;
  c.curriculum_window = 4;
  c.curriculum_threshold = 0.5;
  return c;
}

std::vector<float> Flatten(const ParameterSet<float>& params) {
  std::vector<float> all;
  for (const auto& p : params.all()) all.insert(all.end(), p.value.begin(), p.value.end());
  return all;
}

TEST(GrpoTrainer, TwoStepsRunAndAreDeterministic) {
  const std::string model = TinyPolicyDir();
  ThreadPool pool(2);
  std::vector<float> start;
  {
    ParameterSet<float> p(LoadModelConfig(model));
    LoadParameters(p, model);
    start = Flatten(p);
  }
  std::vector<std::vector<nlohmann::json>> runs;
  std::vector<std::vector<float>> finals;
  for (int run = 0; run < 2; ++run) {
    const std::string out = testing::TempDir("grpo-run" + std::to_string(run));
    GrpoTrainer trainer(SmallRun(model, out, "grpo"), pool);
    trainer.Run(/*quiet=*/true);
    EXPECT_EQ(trainer.step(), 2);
    finals.push_back(Flatten(trainer.params()));
    runs.push_back(ReadMetrics(out + "/metrics.jsonl"));
    for (const char* file : {"config.json", "model.safetensors", "tokenizer.json",
                             "tokenizer_config.json", "report.html", "samples.jsonl"})
      EXPECT_TRUE(std::filesystem::exists(out + "/" + file)) << file;
    EXPECT_FALSE(ReadMetrics(out + "/samples.jsonl").empty());
    std::filesystem::remove_all(out);
  }
  ASSERT_EQ(runs[0].size(), 2u);
  for (const nlohmann::json& row : runs[0]) {
    for (const char* key : {"step", "reward", "accuracy", "format_rate", "response_length", "kl",
                            "entropy", "clip_fraction", "mean_ratio", "groups_kept", "difficulty",
                            "lr", "grad_norm", "tokens_per_s", "rollout_s", "train_s"})
      EXPECT_TRUE(row.contains(key)) << key;
    EXPECT_GT(row["entropy"].get<double>(), 0);
    EXPECT_GT(row["grad_norm"].get<double>(), 0);
    EXPECT_GT(row["response_length"].get<double>(), 1);
    EXPECT_LT(row["response_length"].get<double>(), 12);  // some completions stop early
  }
  // Step 2 follows an update, so its second mini-batch sees ratios ≠ 1 and a nonzero KL.
  EXPECT_GT(runs[0][1]["kl"].get<double>(), 0);
  EXPECT_NE(runs[0][1]["mean_ratio"].get<double>(), 1.0);
  // The weights moved, and the same seed gives the same run, bit for bit.
  EXPECT_NE(finals[0], start);
  EXPECT_EQ(finals[0], finals[1]);
  for (size_t i = 0; i < runs[0].size(); ++i)
    for (const char* key : {"reward", "accuracy", "response_length", "kl", "entropy",
                            "clip_fraction", "mean_ratio", "grad_norm", "difficulty"})
      EXPECT_EQ(runs[0][i][key], runs[1][i][key]) << key << " at row " << i;
  std::filesystem::remove_all(model);
}

TEST(GrpoTrainer, MicroBatchesGiveTheSameUpdateAsWholeMiniBatches) {
  // micro_batch_tokens small enough for one completion per forward: the same rollouts (the
  // sampler does not depend on it), gradients accumulated over the pieces, so the same weights
  // up to the order of float sums.
  const std::string model = TinyPolicyDir();
  ThreadPool pool(2);
  std::vector<std::vector<float>> finals;
  std::vector<std::vector<nlohmann::json>> runs;
  for (const int64_t micro : {int64_t{1} << 20, int64_t{1}}) {
    const std::string out = testing::TempDir("grpo-micro" + std::to_string(micro));
    GrpoConfig c = SmallRun(model, out, "dapo");
    c.micro_batch_tokens = micro;
    c.steps = 1;  // a later step's rollouts could diverge on a near-tie in sampling
    GrpoTrainer trainer(c, pool);
    trainer.Run(/*quiet=*/true);
    finals.push_back(Flatten(trainer.params()));
    runs.push_back(ReadMetrics(out + "/metrics.jsonl"));
    std::filesystem::remove_all(out);
  }
  ASSERT_EQ(finals[0].size(), finals[1].size());
  // The weights start O(0.1-100) and move by lr = 3e-3 per step through Adam; the two runs differ
  // only by float summation order in the gradients (relative ~1e-6), which Adam's normalization
  // passes on at most ~1e-6 · lr per update: 1e-5 absolute leaves room for values up to 100.
  double max_diff = 0;
  for (size_t i = 0; i < finals[0].size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::abs(finals[0][i] - finals[1][i])));
  EXPECT_LT(max_diff, 1e-5);
  ASSERT_EQ(runs[0].size(), runs[1].size());
  for (size_t i = 0; i < runs[0].size(); ++i) {
    EXPECT_EQ(runs[0][i]["reward"], runs[1][i]["reward"]) << i;  // same rollouts
    EXPECT_NEAR(runs[0][i]["loss"].get<double>(), runs[1][i]["loss"].get<double>(), 1e-6) << i;
    EXPECT_NEAR(runs[0][i]["kl"].get<double>(), runs[1][i]["kl"].get<double>(), 1e-6) << i;
  }
  std::filesystem::remove_all(model);
}

TEST(GrpoTrainer, DapoAndDrGrpoRun) {
  const std::string model = TinyPolicyDir();
  ThreadPool pool(2);
  for (const char* variant : {"dapo", "dr-grpo"}) {
    SCOPED_TRACE(variant);
    const std::string out = testing::TempDir(std::string("grpo-") + variant);
    GrpoConfig c = SmallRun(model, out, variant);
    c.temperature = 0.8;  // the trained log-probabilities follow the sampling temperature
    GrpoTrainer trainer(c, pool);
    trainer.Run(/*quiet=*/true);
    const std::vector<nlohmann::json> rows = ReadMetrics(out + "/metrics.jsonl");
    ASSERT_EQ(rows.size(), 2u);
    for (const nlohmann::json& row : rows) {
      EXPECT_GT(row["grad_norm"].get<double>(), 0);
      EXPECT_LE(row["groups_kept"].get<int64_t>(), 3);
      EXPECT_GE(row["groups_sampled"].get<int64_t>(), row["groups_kept"].get<int64_t>());
    }
    std::filesystem::remove_all(out);
  }
  std::filesystem::remove_all(model);
}

// The update points the right way through the whole pipeline: with the length term as the only
// reward (shorter is better), the policy learns to stop earlier. Seeded, so the outcome is fixed;
// the expected drop (~2 tokens) is several times the noise of a 4-step mean (~0.3 tokens).
TEST(GrpoTrainer, LearnsToPreferShorterCompletions) {
  const std::string model = TinyPolicyDir();
  ThreadPool pool(2);
  const std::string out = testing::TempDir("grpo-shorter");
  GrpoConfig c = SmallRun(model, out, "grpo");
  c.accuracy_weight = 0;
  c.format_weight = 0;
  c.steps = 12;
  c.prompts_per_step = 4;
  c.group_size = 8;
  c.lr = 2e-2;
  c.mini_batches = 1;
  c.beta = 0;
  GrpoTrainer trainer(c, pool);
  std::vector<double> lengths;
  for (int64_t s = 0; s < c.steps; ++s)
    lengths.push_back(trainer.Step()["response_length"].get<double>());
  double first = 0, last = 0;
  for (int i = 0; i < 4; ++i) {
    first += lengths[i] / 4;
    last += lengths[lengths.size() - 1 - i] / 4;
  }
  std::printf("mean completion length: first 4 steps %.2f, last 4 steps %.2f\n", first, last);
  EXPECT_LT(last, first - 1);
  std::filesystem::remove_all(out);
  std::filesystem::remove_all(model);
}

// DAPO drops groups whose rewards are all equal and resamples: with no length term and no format
// weight every reward of the random policy is 0, so every group is dropped after all rounds and
// the step trains on nothing (the weights stay as they were).
TEST(GrpoTrainer, DapoDropsZeroVarianceGroups) {
  const std::string model = TinyPolicyDir();
  ThreadPool pool(2);
  const std::string out = testing::TempDir("grpo-dapo-drop");
  GrpoConfig c = SmallRun(model, out, "dapo");
  c.overlong_cache = 0;
  c.format_weight = 0;
  c.steps = 1;
  c.max_resample_rounds = 2;
  GrpoTrainer trainer(c, pool);
  std::vector<float> start = Flatten(trainer.params());
  const nlohmann::json row = trainer.Step();
  EXPECT_EQ(row["groups_kept"].get<int64_t>(), 0);
  EXPECT_EQ(row["groups_sampled"].get<int64_t>(), 3 * (1 + 2));
  EXPECT_EQ(row["reward"].get<double>(), 0.0);
  EXPECT_EQ(Flatten(trainer.params()), start);
  std::filesystem::remove_all(out);
  std::filesystem::remove_all(model);
}

// The curriculum raises an entry's range by one once its accuracy over a full window exceeds the
// threshold, never beyond the task's maximum, and leaves entries below the threshold alone.
TEST(Curriculum, RaisesDifficultyOfEntriesAboveThreshold) {
  Curriculum curriculum(ParseTaskMix("add:1-2,sub:3,sort:8"), 4, 0.5);
  Problem add;
  add.task = "add";
  add.difficulty = 2;
  Problem sub;
  sub.task = "sub";
  sub.difficulty = 3;
  EXPECT_EQ(curriculum.EntryOf(add), 0u);
  EXPECT_EQ(curriculum.EntryOf(sub), 1u);
  sub.difficulty = 4;
  EXPECT_THROW(curriculum.EntryOf(sub), Error);
  for (int i = 0; i < 3; ++i) curriculum.Record(0, true);
  EXPECT_EQ(curriculum.Update(), 0);  // the window is not full yet
  curriculum.Record(0, true);
  for (bool correct : {true, false, false, true}) curriculum.Record(1, correct);  // 0.5: not above
  for (int i = 0; i < 4; ++i) curriculum.Record(2, true);  // sort is at its maximum, 8
  EXPECT_EQ(curriculum.Update(), 1);
  EXPECT_EQ(curriculum.mix()[0].min_difficulty, 2);
  EXPECT_EQ(curriculum.mix()[0].max_difficulty, 3);
  EXPECT_EQ(curriculum.mix()[1].max_difficulty, 3);
  EXPECT_EQ(curriculum.mix()[2].max_difficulty, 8);
  // The raised entry starts a new record: one more correct answer does not move it again.
  curriculum.Record(0, true);
  EXPECT_EQ(curriculum.Update(), 0);
}

TEST(GrpoConfig, RejectsBadSettings) {
  GrpoConfig c = SmallRun("m", "o", "grpo");
  ValidateGrpoConfig(c);
  GrpoConfig bad = c;
  bad.variant = "ppo";
  EXPECT_THROW(ValidateGrpoConfig(bad), Error);
  bad = c;
  bad.group_size = 1;
  EXPECT_THROW(ValidateGrpoConfig(bad), Error);
  bad = c;
  bad.temperature = 0;
  EXPECT_THROW(ValidateGrpoConfig(bad), Error);
  bad = c;
  bad.micro_batch_tokens = 0;
  EXPECT_THROW(ValidateGrpoConfig(bad), Error);
  EXPECT_THROW(ApplyGrpoConfigJson(bad, nlohmann::json{{"group", 3}}, "test.json"), Error);
  EXPECT_THROW(ApplyGrpoConfigJson(bad, nlohmann::json{{"steps", "3"}}, "test.json"), Error);
  ApplyGrpoConfigJson(bad, nlohmann::json{{"steps", 7}, {"variant", "dapo"}}, "test.json");
  EXPECT_EQ(bad.steps, 7);
  EXPECT_EQ(GrpoLossOptionsFor(bad).eps_hi, 0.28);
  EXPECT_EQ(GrpoLossOptionsFor(bad).aggregation, LossAggregation::kDapo);
}

}  // namespace
}  // namespace whale
