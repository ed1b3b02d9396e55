// Router and sequence-wise balance loss: finite differences in double away from selection ties,
// the float router against the inference RouteToken, the balance loss's value on known cases.
#include "train/ops_moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops_grad_check.h"
#include "util/error.h"

namespace whale {
namespace {

std::vector<RouterParams> TestParams() {
  return {
      // V3: sigmoid, group-limited by the sum of the two best, normalized, scaled.
      {RouterScoring::kSigmoid, RouterMethod::kNoauxTc, 8, 4, 2, 3, true, 2.5f},
      // V2-Lite: softmax over all experts, greedy, not normalized.
      {RouterScoring::kSoftmax, RouterMethod::kGreedy, 6, 1, 1, 2, false, 1.0f},
      // V2: softmax, group-limited by the best score, normalized.
      {RouterScoring::kSoftmax, RouterMethod::kGroupLimitedGreedy, 8, 4, 3, 4, true, 16.0f},
  };
}

TEST(OpsMoe, RouterGradientMatchesFiniteDifferences) {
  std::mt19937 rng(13);
  for (const RouterParams& p : TestParams()) {
    SCOPED_TRACE(testing::Message() << "experts=" << p.n_experts << " k=" << p.top_k);
    const int64_t n = 5, e = p.n_experts, k = p.top_k;
    // Logits spread over [-3, 3]: with 8 experts the closest pair of selection scores is far
    // above the FD step (checked below: the selection never changes during the check).
    std::vector<double> logits = RandomDoubles(n * e, rng, -3, 3);
    std::vector<float> bias;
    if (p.method == RouterMethod::kNoauxTc) {
      const std::vector<double> b = RandomDoubles(e, rng, -0.1, 0.1);
      bias.assign(b.begin(), b.end());
    }
    const std::vector<double> rw = RandomDoubles(n * k, rng), rs = RandomDoubles(n * e, rng);
    std::vector<int32_t> ids(n * k), ids0;
    std::vector<double> weights(n * k), scores(n * e);
    auto loss = [&] {
      RouterForward<double>(ids, weights, scores, logits, bias, p, n);
      EXPECT_EQ(ids, ids0) << "selection changed: the check is not away from ties";
      return Project(weights, rw) + Project(scores, rs);
    };
    RouterForward<double>(ids, weights, scores, logits, bias, p, n);
    ids0 = ids;
    std::vector<double> dlogits(n * e);
    RouterBackward<double>(dlogits, rw, rs, scores, ids, p, n);
    ExpectGradient(logits, dlogits, loss, "dlogits");
    // Without dscores only the selected experts' path remains.
    std::vector<double> only_weights(n * e);
    RouterBackward<double>(only_weights, rw, {}, scores, ids, p, n);
    auto weights_loss = [&] {
      RouterForward<double>(ids, weights, scores, logits, bias, p, n);
      return Project(weights, rw);
    };
    ExpectGradient(logits, only_weights, weights_loss, "dlogits (weights only)");
  }
}

TEST(OpsMoe, FloatRouterIsTheInferenceRouter) {
  std::mt19937 rng(14);
  for (const RouterParams& p : TestParams()) {
    const int64_t n = 33, e = p.n_experts, k = p.top_k;
    const std::vector<double> ld = RandomDoubles(n * e, rng, -4, 4);
    const std::vector<float> logits(ld.begin(), ld.end());
    std::vector<float> bias;
    if (p.method == RouterMethod::kNoauxTc) bias.assign(e, 0.0f), bias[3] = 0.5f;
    std::vector<int32_t> ids(n * k), expected_ids(k);
    std::vector<float> weights(n * k), scores(n * e), expected_weights(k);
    std::vector<float> scratch(RouterScratchSize(p));
    RouterForward<float>(ids, weights, scores, logits, bias, p, n);
    for (int64_t t = 0; t < n; ++t) {
      RouteToken(expected_ids, expected_weights, std::span<const float>(logits).subspan(t * e, e),
                 bias, p, scratch);
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(ids[t * k + j], expected_ids[j]);
        EXPECT_EQ(weights[t * k + j], expected_weights[j]);
      }
    }
  }
}

TEST(OpsMoe, BalanceLossValue) {
  // Uniform scores: P_i = 1/E and Σ_i f_i = E/(K·T)·K·T = E, so the loss is α whatever the
  // selection. All tokens on the same K experts with scores concentrated there: f_i = E/K on
  // them, P_i = 1/K, loss = α·E/K (the maximum).
  const int64_t n_seqs = 2, seq_len = 3, e = 4, k = 2;
  const double alpha = 0.01;
  const std::vector<double> uniform(n_seqs * seq_len * e, 0.3);
  const std::vector<int32_t> ids = {0, 1, 2, 3, 1, 2, 0, 1, 0, 1, 0, 1};
  EXPECT_NEAR(BalanceLossForward<double>(uniform, ids, n_seqs, seq_len, e, k, alpha), alpha, 1e-15);
  std::vector<double> peaked(n_seqs * seq_len * e, 0.0);
  for (int64_t t = 0; t < n_seqs * seq_len; ++t) peaked[t * e + 0] = peaked[t * e + 1] = 0.7;
  const std::vector<int32_t> same = std::vector<int32_t>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  EXPECT_NEAR(BalanceLossForward<double>(peaked, same, n_seqs, seq_len, e, k, alpha), alpha * e / k,
              1e-15);
}

TEST(OpsMoe, BalanceLossGradientMatchesFiniteDifferences) {
  std::mt19937 rng(15);
  for (const RouterParams& p : TestParams()) {
    const int64_t n_seqs = 2, seq_len = 4, n = n_seqs * seq_len, e = p.n_experts, k = p.top_k;
    std::vector<double> logits = RandomDoubles(n * e, rng, -3, 3);
    std::vector<int32_t> ids(n * k), ids0;
    std::vector<double> weights(n * k), scores(n * e);
    const double alpha = 0.37, dloss = 1.7;
    auto loss = [&] {
      RouterForward<double>(ids, weights, scores, logits, {}, p, n);
      EXPECT_EQ(ids, ids0) << "selection changed: the check is not away from ties";
      return dloss * BalanceLossForward<double>(scores, ids, n_seqs, seq_len, e, k, alpha);
    };
    RouterForward<double>(ids, weights, scores, logits, {}, p, n);
    ids0 = ids;
    std::vector<double> dscores(n * e, 0.0), dlogits(n * e);
    BalanceLossBackward<double>(dscores, dloss, scores, ids, n_seqs, seq_len, e, k, alpha);
    const std::vector<double> no_weights(n * k, 0.0);
    RouterBackward<double>(dlogits, no_weights, dscores, scores, ids, p, n);
    ExpectGradient(logits, dlogits, loss, "dlogits via balance loss");
  }
}

TEST(OpsMoe, RejectsBadInput) {
  const RouterParams p = TestParams()[0];
  std::vector<int32_t> ids(3);
  std::vector<float> weights(3), scores(8), logits(7);  // logits needs 8
  EXPECT_THROW(RouterForward<float>(ids, weights, scores, logits, {}, p, 1), Error);
  const std::vector<float> s(8, 0.5f);
  const std::vector<int32_t> bad = {0, 9, 1};
  EXPECT_THROW(BalanceLossForward<float>(s, bad, 1, 1, 8, 3, 1.0), Error);
  EXPECT_THROW(BalanceLossForward<float>(s, bad, 1, 1, 8, 9, 1.0), Error);
}

}  // namespace
}  // namespace whale
