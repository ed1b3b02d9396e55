#include "kernels/router.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "util/error.h"

namespace whale {
namespace {

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Routed Route(const RouterParams& p, const std::vector<float>& logits,
             const std::vector<float>& bias) {
  Routed r{std::vector<int32_t>(p.top_k), std::vector<float>(p.top_k)};
  std::vector<float> scratch(RouterScratchSize(p));
  RouteToken(r.ids, r.weights, logits, bias, p, scratch);
  return r;
}

Routed RouteRef(const RouterParams& p, const std::vector<float>& logits,
                const std::vector<float>& bias) {
  Routed r{std::vector<int32_t>(p.top_k), std::vector<float>(p.top_k)};
  RouteTokenRef(r.ids, r.weights, logits, bias, p);
  return r;
}

RouterParams V3() {
  return {RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 256, 8, 4, 8, true, 2.5f};
}
RouterParams V2Lite() {
  return {RouterScoring::kSoftmax, RouterMethod::kGreedy, 64, 1, 1, 6, false, 1.0f};
}
RouterParams V2() {
  return {RouterScoring::kSoftmax, RouterMethod::kGroupLimitedGreedy, 160, 8, 3, 6, false, 16.0f};
}

// Random tokens with many exact ties: logits on a grid of 1/4 in [-2, 2] (17 values), biases
// on a grid of 1/32 in [-0.5, 0.25] (mostly negative).
TEST(RouteToken, MatchesBruteForceReferenceWithTiesAndNegativeBiases) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> logit_step(-8, 8), bias_step(-16, 8);
  std::vector<RouterParams> shapes = {V3(), V2Lite(), V2()};
  for (RouterScoring scoring : {RouterScoring::kSigmoid, RouterScoring::kSoftmax})
    for (RouterMethod method :
         {RouterMethod::kNoauxTc, RouterMethod::kGreedy, RouterMethod::kGroupLimitedGreedy})
      for (auto [e, g, tg, k] : {std::array<int, 4>{256, 8, 4, 8},
                                 {64, 1, 1, 6},
                                 {64, 8, 3, 6},
                                 {16, 4, 2, 4},
                                 {8, 2, 1, 4},
                                 {8, 4, 4, 8},
                                 {6, 3, 2, 1}})
        for (bool norm : {false, true})
          shapes.push_back({scoring, method, e, g, tg, k, norm, 2.5f});
  for (const RouterParams& p : shapes)
    for (int token = 0; token < 40; ++token) {
      std::vector<float> logits(p.n_experts), bias;
      for (float& v : logits) v = logit_step(rng) / 4.0f;
      if (p.method == RouterMethod::kNoauxTc) {
        bias.resize(p.n_experts);
        for (float& v : bias) v = bias_step(rng) / 32.0f;
        if (token % 4 == 0) bias.clear();  // no correction bias at all
      }
      const Routed fast = Route(p, logits, bias), ref = RouteRef(p, logits, bias);
      ASSERT_EQ(fast.ids, ref.ids) << "experts=" << p.n_experts << " groups=" << p.n_group
                                   << " method=" << static_cast<int>(p.method);
      ASSERT_EQ(fast.weights, ref.weights);
    }
}

// The group mask is −inf: a kept group whose biased scores are all negative still wins over
// the experts of dropped groups (a 0.0 mask, as in HF, would pick dropped experts instead).
TEST(RouteToken, NoauxTcMasksDroppedGroupsWithMinusInfinity) {
  const RouterParams p{RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 8, 2, 1, 2, true, 1.0f};
  const std::vector<float> logits(8, 0.0f);  // every s = 0.5
  // b = 0.5 + bias. Group 0: top-2 sum 0.4 + (-9.5) = -9.1; group 1: -0.6 + -0.7 = -1.3.
  const std::vector<float> bias = {-0.1f, -10.0f, -10.0f, -10.0f, -1.1f, -1.2f, -1.3f, -1.4f};
  const Routed r = Route(p, logits, bias);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{4, 5}));
  // Weights come from the unbiased scores (0.5 each), renormalized.
  EXPECT_EQ(r.weights, (std::vector<float>{0.5f, 0.5f}));
}

TEST(RouteToken, NoauxTcGroupScoreIsTheSumOfTheTwoBest) {
  // Group 0 has the single best expert, group 1 the better pair: group 1 is kept.
  const RouterParams p{RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 8, 2, 1, 1, false, 1.0f};
  const std::vector<float> logits = {4.0f, -4.0f, -4.0f, -4.0f, 1.0f, 1.0f, -4.0f, -4.0f};
  EXPECT_EQ(Route(p, logits, {}).ids, (std::vector<int32_t>{4}));
  // group_limited_greedy scores a group by its best expert: group 0 is kept.
  const RouterParams v2{
      RouterScoring::kSigmoid, RouterMethod::kGroupLimitedGreedy, 8, 2, 1, 1, false, 1.0f};
  EXPECT_EQ(Route(v2, logits, {}).ids, (std::vector<int32_t>{0}));
}

TEST(RouteToken, BiasSelectsButDoesNotWeigh) {
  const RouterParams p{RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 4, 1, 1, 2, false, 2.5f};
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f, -1.0f};
  const std::vector<float> bias = {-1.0f, 0.0f, 0.0f, 1.0f};  // b ≈ 0.88-1, 0.73, 0.5, 1.27
  const Routed r = Route(p, logits, bias);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{3, 1}));
  EXPECT_NEAR(r.weights[0], 2.5 / (1 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(r.weights[1], 2.5 / (1 + std::exp(-1.0)), 1e-6);
}

TEST(RouteToken, TiesGoToTheSmallerIndex) {
  const RouterParams p = V3();
  const Routed r = Route(p, std::vector<float>(256, 0.0f), std::vector<float>(256, 0.0f));
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  for (float w : r.weights) EXPECT_FLOAT_EQ(w, 2.5f / 8);
  // Tied groups: the smaller group index is kept, even when a later group ties.
  const RouterParams g{RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 8, 4, 1, 2, false, 1.0f};
  const std::vector<float> logits = {0, 0, 1, 1, 0, 0, 1, 1};
  EXPECT_EQ(Route(g, logits, {}).ids, (std::vector<int32_t>{2, 3}));
}

TEST(RouteToken, V3WeightsSumToTheScalingFactor) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(256), bias(256);
  for (float& v : logits) v = normal(rng);
  for (float& v : bias) v = 0.01f * normal(rng);
  const Routed r = Route(V3(), logits, bias);
  double sum = 0;
  for (float w : r.weights) sum += w;
  EXPECT_NEAR(sum, 2.5, 1e-5);
  for (int k = 1; k < 8; ++k) EXPECT_NE(r.ids[k], r.ids[k - 1]);
}

TEST(RouteToken, V2LiteWeightsAreSoftmaxProbabilities) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> logits(64);
  for (float& v : logits) v = normal(rng);
  const Routed r = Route(V2Lite(), logits, {});
  double denominator = 0;
  for (float v : logits) denominator += std::exp(static_cast<double>(v));
  for (int k = 0; k < 6; ++k) {
    EXPECT_NEAR(r.weights[k], std::exp(static_cast<double>(logits[r.ids[k]])) / denominator, 1e-6);
    if (k > 0) {
      EXPECT_GE(logits[r.ids[k - 1]], logits[r.ids[k]]);
    }
  }
}

TEST(RouteToken, RejectsInvalidParamsAndSizes) {
  auto invalid = [](RouterParams p) { EXPECT_THROW(ValidateRouterParams(p), Error); };
  RouterParams p = V3();
  p.n_group = 7;  // 256 % 7 != 0
  invalid(p);
  p = V3();
  p.topk_group = 9;
  invalid(p);
  p = V3();
  p.topk_group = 0;
  invalid(p);
  p = V3();
  p.top_k = 129;  // 4 groups of 32 = 128 selectable
  invalid(p);
  p = V2Lite();
  p.top_k = 0;
  invalid(p);
  p = {RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 8, 8, 2, 2, true, 1.0f};  // 1 per group
  invalid(p);
  p = V3();
  p.routed_scaling_factor = NAN;
  invalid(p);
  EXPECT_NO_THROW(ValidateRouterParams(V3()));
  EXPECT_NO_THROW(ValidateRouterParams(V2Lite()));
  EXPECT_NO_THROW(ValidateRouterParams(V2()));

  std::vector<int32_t> ids(6);
  std::vector<float> weights(6), logits(64), scratch(RouterScratchSize(V2Lite()));
  EXPECT_NO_THROW(RouteToken(ids, weights, logits, {}, V2Lite(), scratch));
  const std::vector<float> bias(64);
  EXPECT_THROW(RouteToken(ids, weights, logits, bias, V2Lite(), scratch), Error);
  EXPECT_THROW(
      RouteToken(ids, weights, std::span<const float>(logits).first(63), {}, V2Lite(), scratch),
      Error);
  EXPECT_THROW(RouteToken(std::span<int32_t>(ids).first(5), weights, logits, {}, V2Lite(), scratch),
               Error);
  EXPECT_THROW(RouteToken(ids, weights, logits, {}, V2Lite(), std::span<float>(scratch).first(10)),
               Error);
  try {
    p = V3();
    p.n_group = 7;
    ValidateRouterParams(p);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "router: n_group = 7 does not divide n_routed_experts = 256");
  }
}

}  // namespace
}  // namespace whale
