// The GRPO loss and its gradient against a direct computation on a toy tabular softmax policy.
//
// The policy has S states and V actions with one logit row per state; a token is (state,
// action) and log π(a|s) = log_softmax(z_s / T)[a]. The test rolls out completions from a frozen
// "old" policy, takes a few SGD steps on mini-batches (so ρ moves away from 1 and clipping
// fires), then compares d loss / d z from GrpoLoss + the chain rule dℓ/dz = (onehot − softmax)/T
// with central finite differences of a loss written directly from the formulas.
#include "train/grpo_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "util/error.h"

namespace whale {
namespace {

constexpr int kStates = 5, kActions = 4;
constexpr double kTemperature = 0.7;

using Logits = std::vector<double>;  // [kStates, kActions]

double LogProb(const Logits& z, int s, int a) {
  double m = -1e300;
  for (int v = 0; v < kActions; ++v) m = std::max(m, z[s * kActions + v] / kTemperature);
  double sum = 0;
  for (int v = 0; v < kActions; ++v) sum += std::exp(z[s * kActions + v] / kTemperature - m);
  return z[s * kActions + a] / kTemperature - m - std::log(sum);
}

struct Rollout {
  std::vector<int> states, actions;        // [n_tokens]
  std::vector<int64_t> lengths;            // [B]
  std::vector<double> advantages;          // [B]
  std::vector<double> logp_old, logp_ref;  // [n_tokens]
};

std::vector<double> LogProbs(const Logits& z, const Rollout& r) {
  std::vector<double> out(r.states.size());
  for (size_t t = 0; t < out.size(); ++t) out[t] = LogProb(z, r.states[t], r.actions[t]);
  return out;
}

Rollout MakeRollout(const Logits& old_z, const Logits& ref_z, AdvantageMode mode, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Rollout r;
  // Two groups of three with odd lengths, including a single-token completion.
  r.lengths = {1, 31, 33, 32, 7, 5};
  for (int64_t n : r.lengths) {
    for (int64_t k = 0; k < n; ++k) {
      const int s = static_cast<int>(rng() % kStates);
      std::vector<double> p(kActions);
      for (int a = 0; a < kActions; ++a) p[a] = std::exp(LogProb(old_z, s, a));
      std::discrete_distribution<int> pick(p.begin(), p.end());
      r.states.push_back(s);
      r.actions.push_back(pick(rng));
    }
  }
  const double rewards[6] = {1.0, 0.0, 0.1, 0.0, 1.1, 1.0};
  r.advantages.resize(6);
  GroupAdvantages(std::span(r.advantages).subspan(0, 3), std::span(rewards, 3), mode);
  GroupAdvantages(std::span(r.advantages).subspan(3, 3), std::span(rewards + 3, 3), mode);
  r.logp_old = LogProbs(old_z, r);
  r.logp_ref = LogProbs(ref_z, r);
  return r;
}

// The loss written straight from training.md 5, one term at a time.
double DirectLoss(const Logits& z, const Rollout& r, const GrpoLossOptions& o) {
  const std::vector<double> logp = LogProbs(z, r);
  const double b = static_cast<double>(r.lengths.size());
  double total_tokens = 0;
  for (int64_t n : r.lengths) total_tokens += static_cast<double>(n);
  double loss = 0;
  size_t t = 0;
  for (size_t i = 0; i < r.lengths.size(); ++i) {
    double sequence_sum = 0;
    for (int64_t k = 0; k < r.lengths[i]; ++k, ++t) {
      const double rho = std::exp(logp[t] - r.logp_old[t]);
      const double a = r.advantages[i];
      const double s = std::min(rho * a, std::clamp(rho, 1 - o.eps_lo, 1 + o.eps_hi) * a);
      const double ratio_ref = std::exp(r.logp_ref[t] - logp[t]);
      const double kl = ratio_ref - std::log(ratio_ref) - 1;
      sequence_sum += s - o.beta * kl;
    }
    switch (o.aggregation) {
      case LossAggregation::kGrpo:
        loss -= sequence_sum / static_cast<double>(r.lengths[i]) / b;
        break;
      case LossAggregation::kDapo:
        loss -= sequence_sum / total_tokens;
        break;
      case LossAggregation::kDrGrpo:
        loss -= sequence_sum / (b * static_cast<double>(o.max_length));
        break;
    }
  }
  return loss;
}

// Loss on the sequences [first, last) of the rollout, with d loss / d z.
GrpoLossResult LossAndLogitGrad(const Logits& z, const Rollout& r, size_t first, size_t last,
                                const GrpoLossOptions& o, Logits* grad_z) {
  size_t begin = 0;
  for (size_t i = 0; i < first; ++i) begin += static_cast<size_t>(r.lengths[i]);
  size_t end = begin;
  for (size_t i = first; i < last; ++i) end += static_cast<size_t>(r.lengths[i]);
  const std::vector<double> logp_all = LogProbs(z, r);
  const std::span<const double> logp(logp_all.data() + begin, end - begin);
  std::vector<double> grad(end - begin);
  const GrpoLossResult result =
      GrpoLoss<double>(grad, logp, std::span<const double>(r.logp_old).subspan(begin, end - begin),
                       std::span<const double>(r.logp_ref).subspan(begin, end - begin),
                       std::span<const double>(r.advantages).subspan(first, last - first),
                       std::span<const int64_t>(r.lengths).subspan(first, last - first), o);
  grad_z->assign(z.size(), 0.0);
  for (size_t t = begin; t < end; ++t) {
    const int s = r.states[t];
    for (int v = 0; v < kActions; ++v) {
      const double softmax = std::exp(LogProb(z, s, v));
      const double onehot = v == r.actions[t] ? 1.0 : 0.0;
      (*grad_z)[s * kActions + v] += grad[t - begin] * (onehot - softmax) / kTemperature;
    }
  }
  return result;
}

struct Variant {
  LossAggregation aggregation;
  double eps_hi, beta;
};

class GrpoToyPolicy : public ::testing::TestWithParam<Variant> {};

void CheckGradient(const Logits& z, const Rollout& r, const GrpoLossOptions& o,
                   const GrpoLossResult& expect_stats) {
  Logits grad;
  const GrpoLossResult result = LossAndLogitGrad(z, r, 0, r.lengths.size(), o, &grad);
  // Same formula, different summation order: agreement to a few ulps of the loss.
  EXPECT_NEAR(result.loss, DirectLoss(z, r, o), 1e-12);
  EXPECT_EQ(result.clip_fraction, expect_stats.clip_fraction);
  // Central differences in double: truncation ~h² · |ℓ'''| ≈ 1e-12 and rounding ~1e-16 / h ≈
  // 1e-10; 1e-7 leaves a wide margin while catching any wrong factor (gradients are ~1e-2).
  const double h = 1e-6;
  double max_grad = 0;
  for (size_t k = 0; k < z.size(); ++k) {
    Logits plus = z, minus = z;
    plus[k] += h;
    minus[k] -= h;
    const double numeric = (DirectLoss(plus, r, o) - DirectLoss(minus, r, o)) / (2 * h);
    EXPECT_NEAR(grad[k], numeric, 1e-7) << "logit " << k;
    max_grad = std::max(max_grad, std::abs(grad[k]));
  }
  EXPECT_GT(max_grad, 1e-3);  // the check is not vacuous
}

TEST_P(GrpoToyPolicy, GradientMatchesFiniteDifferences) {
  const Variant v = GetParam();
  std::mt19937_64 rng(77);
  std::normal_distribution<double> normal(0.0, 1.0);
  Logits old_z(kStates * kActions), ref_z(kStates * kActions);
  for (double& x : old_z) x = normal(rng);
  for (size_t k = 0; k < ref_z.size(); ++k) ref_z[k] = old_z[k] + 0.3 * normal(rng);
  GrpoLossOptions o;
  o.eps_lo = 0.2;
  o.eps_hi = v.eps_hi;
  o.beta = v.beta;
  o.aggregation = v.aggregation;
  o.max_length = 40;
  const Rollout r = MakeRollout(
      old_z, ref_z,
      v.aggregation == LossAggregation::kDrGrpo ? AdvantageMode::kDrGrpo : AdvantageMode::kGrpo, 5);

  // First mini-batch step: θ = θ_old, so ρ ≡ 1 and nothing is clipped.
  Logits z = old_z, grad;
  GrpoLossResult stats = LossAndLogitGrad(z, r, 0, r.lengths.size(), o, &grad);
  EXPECT_EQ(stats.clip_fraction, 0.0);
  EXPECT_NEAR(stats.mean_ratio, 1.0, 1e-15);
  CheckGradient(z, r, o, stats);

  // Several SGD steps on alternating mini-batches (groups) move θ until clipping fires.
  // Normalized steps (no logit moves more than 0.25 per step) keep every variant stable whatever
  // its loss scale.
  for (int step = 0; step < 6; ++step) {
    const size_t first = step % 2 == 0 ? 0 : 3;
    LossAndLogitGrad(z, r, first, first + 3, o, &grad);
    double largest = 0;
    for (double g : grad) largest = std::max(largest, std::abs(g));
    for (size_t k = 0; k < z.size(); ++k) z[k] -= 0.25 * grad[k] / largest;
  }
  stats = LossAndLogitGrad(z, r, 0, r.lengths.size(), o, &grad);
  EXPECT_GT(stats.clip_fraction, 0.0);
  EXPECT_LT(stats.clip_fraction, 1.0);
  EXPECT_GT(std::abs(stats.mean_ratio - 1.0), 1e-3);
  if (v.beta > 0) {
    EXPECT_GT(stats.mean_kl, 0.0);
  }
  CheckGradient(z, r, o, stats);
}

INSTANTIATE_TEST_SUITE_P(Variants, GrpoToyPolicy,
                         ::testing::Values(Variant{LossAggregation::kGrpo, 0.2, 0.0},
                                           Variant{LossAggregation::kGrpo, 0.2, 0.04},
                                           Variant{LossAggregation::kDapo, 0.28, 0.0},
                                           Variant{LossAggregation::kDapo, 0.28, 0.04},
                                           Variant{LossAggregation::kDrGrpo, 0.2, 0.0},
                                           Variant{LossAggregation::kDrGrpo, 0.28, 0.04}));

TEST(GrpoLoss, OnPolicyGradientIsMinusWeightTimesAdvantage) {
  // ρ = 1, β = 0: d loss / d ℓ = −w·A exactly, for each aggregation's weight.
  const std::vector<double> logp = {-1.0, -2.0, -0.5, -0.1, -3.0};
  const std::vector<double> advantages = {0.5, -2.0};
  const std::vector<int64_t> lengths = {2, 3};
  std::vector<double> grad(5);
  GrpoLossOptions o;
  o.max_length = 10;
  const double weights[3][2] = {{1.0 / 4, 1.0 / 6}, {1.0 / 5, 1.0 / 5}, {1.0 / 20, 1.0 / 20}};
  const LossAggregation kinds[3] = {LossAggregation::kGrpo, LossAggregation::kDapo,
                                    LossAggregation::kDrGrpo};
  for (int k = 0; k < 3; ++k) {
    o.aggregation = kinds[k];
    const GrpoLossResult r = GrpoLoss<double>(grad, logp, logp, {}, advantages, lengths, o);
    for (int t = 0; t < 5; ++t) {
      const int i = t < 2 ? 0 : 1;
      EXPECT_DOUBLE_EQ(grad[t], -weights[k][i] * advantages[i]) << k << " " << t;
    }
    EXPECT_DOUBLE_EQ(r.loss, -(2 * weights[k][0] * 0.5 + 3 * weights[k][1] * -2.0));
    EXPECT_EQ(r.mean_kl, 0.0);
    EXPECT_EQ(r.n_tokens, 5);
  }
}

TEST(GrpoLoss, FloatMatchesDoubleAndEmptySequencesAreSkipped) {
  const std::vector<double> logp = {-1.0, -2.0, -0.5, -0.1, -3.0};
  const std::vector<double> old = {-1.3, -1.9, -0.2, -0.1, -2.0};
  const std::vector<double> ref = {-1.1, -2.5, -0.4, -0.3, -2.9};
  const std::vector<double> advantages = {0.5, 0.0, -2.0};
  const std::vector<int64_t> lengths = {2, 0, 3};
  GrpoLossOptions o;
  o.beta = 0.1;
  std::vector<double> grad(5);
  const GrpoLossResult rd = GrpoLoss<double>(grad, logp, old, ref, advantages, lengths, o);
  std::vector<float> logp_f(logp.begin(), logp.end()), old_f(old.begin(), old.end()),
      ref_f(ref.begin(), ref.end()), grad_f(5);
  const GrpoLossResult rf = GrpoLoss<float>(grad_f, logp_f, old_f, ref_f, advantages, lengths, o);
  // Inputs are rounded to float (relative 6e-8) and the exponentials amplify that by at most
  // e^1 here; 1e-6 bounds the difference.
  EXPECT_NEAR(rd.loss, rf.loss, 1e-6);
  for (int t = 0; t < 5; ++t) EXPECT_NEAR(grad[t], grad_f[t], 1e-6);
  EXPECT_EQ(rd.n_tokens, 5);
  EXPECT_GT(rd.clip_fraction, 0.0);  // token 4: ρ = e^-1 < 0.8 with A < 0
}

TEST(GrpoLoss, CallsWithBatchTotalsAddUpToTheWholeBatch) {
  // A batch split into two calls (micro-batches) that name the batch's completions and tokens
  // gives every token the gradient of one call over the whole batch, and the losses add up.
  const std::vector<double> logp = {-1.0, -2.0, -0.5, -0.1, -3.0, -0.7};
  const std::vector<double> old = {-1.3, -1.9, -0.2, -0.1, -2.0, -0.6};
  const std::vector<double> ref = {-1.1, -2.5, -0.4, -0.3, -2.9, -0.9};
  const std::vector<double> advantages = {0.5, -2.0, 1.5};
  const std::vector<int64_t> lengths = {2, 3, 1};
  const LossAggregation kinds[3] = {LossAggregation::kGrpo, LossAggregation::kDapo,
                                    LossAggregation::kDrGrpo};
  for (const LossAggregation kind : kinds) {
    GrpoLossOptions o;
    o.aggregation = kind;
    o.beta = 0.1;
    o.max_length = 10;
    std::vector<double> whole(6);
    const GrpoLossResult all = GrpoLoss<double>(whole, logp, old, ref, advantages, lengths, o);
    o.batch_completions = 3;
    o.batch_tokens = 6;
    std::vector<double> first(2), second(4);
    const auto part = [](const std::vector<double>& v, size_t begin, size_t n) {
      return std::span<const double>(v.data() + begin, n);
    };
    const GrpoLossResult a =
        GrpoLoss<double>(first, part(logp, 0, 2), part(old, 0, 2), part(ref, 0, 2),
                         part(advantages, 0, 1), std::span<const int64_t>(lengths.data(), 1), o);
    const GrpoLossResult b = GrpoLoss<double>(second, part(logp, 2, 4), part(old, 2, 4),
                                              part(ref, 2, 4), part(advantages, 1, 2),
                                              std::span<const int64_t>(lengths.data() + 1, 2), o);
    // Same terms, summed in another order: a few ulps.
    EXPECT_NEAR(a.loss + b.loss, all.loss, 1e-15) << static_cast<int>(kind);
    for (int t = 0; t < 2; ++t) EXPECT_DOUBLE_EQ(first[t], whole[t]) << static_cast<int>(kind);
    for (int t = 0; t < 4; ++t) EXPECT_DOUBLE_EQ(second[t], whole[2 + t]) << static_cast<int>(kind);
    // Totals below the call's own are a caller's mistake.
    o.batch_tokens = 1;
    EXPECT_THROW(
        GrpoLoss<double>(first, part(logp, 0, 2), part(old, 0, 2), part(ref, 0, 2),
                         part(advantages, 0, 1), std::span<const int64_t>(lengths.data(), 1), o),
        Error);
  }
}

TEST(GrpoLoss, RejectsBadOptions) {
  GrpoLossOptions o;
  o.aggregation = LossAggregation::kDrGrpo;
  o.max_length = 0;
  EXPECT_THROW(ValidateGrpoLossOptions(o), Error);
  o = GrpoLossOptions();
  o.eps_lo = 1.0;
  EXPECT_THROW(ValidateGrpoLossOptions(o), Error);
  o = GrpoLossOptions();
  o.beta = -0.1;
  EXPECT_THROW(ValidateGrpoLossOptions(o), Error);
  o = GrpoLossOptions();
  o.batch_tokens = -1;
  EXPECT_THROW(ValidateGrpoLossOptions(o), Error);
}

TEST(GroupAdvantages, GrpoDrGrpoAndZeroVariance) {
  const std::vector<double> rewards = {1.0, 0.0, 0.0, 1.0};
  std::vector<double> a(4);
  GroupStats s = GroupAdvantages(a, rewards, AdvantageMode::kGrpo);
  EXPECT_DOUBLE_EQ(s.mean, 0.5);
  EXPECT_DOUBLE_EQ(s.std, 0.5);  // population std
  EXPECT_FALSE(s.zero_variance);
  EXPECT_DOUBLE_EQ(a[0], 0.5 / (0.5 + 1e-4));
  EXPECT_DOUBLE_EQ(a[1], -0.5 / (0.5 + 1e-4));
  s = GroupAdvantages(a, rewards, AdvantageMode::kDrGrpo);
  EXPECT_DOUBLE_EQ(a[0], 0.5);
  EXPECT_DOUBLE_EQ(a[2], -0.5);

  const std::vector<double> same = {0.3, 0.3, 0.3};
  std::vector<double> b(3, 9.0);
  s = GroupAdvantages(b, same, AdvantageMode::kGrpo);
  EXPECT_TRUE(s.zero_variance);
  for (double x : b) EXPECT_EQ(x, 0.0);

  const std::vector<double> single = {1.0};
  std::vector<double> c(1);
  EXPECT_TRUE(GroupAdvantages(c, single, AdvantageMode::kGrpo).zero_variance);
}

}  // namespace
}  // namespace whale
