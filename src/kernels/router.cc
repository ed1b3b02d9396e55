#include "kernels/router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/activation.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

bool UsesGroups(const RouterParams& p) {
  return p.method != RouterMethod::kGreedy && p.n_group > 1;
}

// The two best values' sum (kNoauxTc) or the best value (kGroupLimitedGreedy) of one group.
float GroupScore(std::span<const float> group, RouterMethod method) {
  float best = kMinusInf, second = kMinusInf;
  for (float v : group) {
    if (v > best) {
      second = best;
      best = v;
    } else if (v > second) {
      second = v;
    }
  }
  const float score = method == RouterMethod::kNoauxTc ? best + second : best;
  return std::isnan(score) ? kMinusInf : score;  // +inf + −inf
}

// True when candidate a ranks before b: higher score, ties to the smaller index.
bool RanksBefore(std::span<const float> score, int a, int b) {
  return score[a] > score[b] || (score[a] == score[b] && a < b);
}

void CheckRouteSizes(std::span<int32_t> expert_ids, std::span<float> weights,
                     std::span<const float> logits, std::span<const float> bias,
                     const RouterParams& p, const char* kernel) {
  ValidateRouterParams(p);
  if (static_cast<int64_t>(expert_ids.size()) != p.top_k ||
      static_cast<int64_t>(weights.size()) != p.top_k)
    Fail(kernel, ": expert_ids and weights have ", expert_ids.size(), " and ", weights.size(),
         " entries, expected top_k = ", p.top_k);
  if (static_cast<int64_t>(logits.size()) != p.n_experts)
    Fail(kernel, ": logits has ", logits.size(), " entries, expected n_experts = ", p.n_experts);
  if (p.method == RouterMethod::kNoauxTc) {
    if (!bias.empty() && static_cast<int64_t>(bias.size()) != p.n_experts)
      Fail(kernel, ": bias (e_score_correction_bias) has ", bias.size(),
           " entries, expected n_experts = ", p.n_experts, " or none");
  } else if (!bias.empty()) {
    Fail(kernel, ": a bias (e_score_correction_bias) is given but only noaux_tc routing uses one");
  }
}

void Score(std::span<float> scores, std::span<const float> logits, RouterScoring scoring) {
  if (scoring == RouterScoring::kSigmoid) {
    Sigmoid(scores, logits);
  } else {
    std::copy(logits.begin(), logits.end(), scores.begin());
    Softmax(scores);
  }
}

void FinishWeights(std::span<float> weights, std::span<const int32_t> expert_ids,
                   std::span<const float> scores, const RouterParams& p) {
  for (size_t k = 0; k < weights.size(); ++k) weights[k] = scores[expert_ids[k]];
  if (p.norm_topk_prob) {
    float sum = 0.0f;
    for (float w : weights) sum += w;
    for (float& w : weights) w /= sum;
  }
  for (float& w : weights) w *= p.routed_scaling_factor;
}

}  // namespace

void ValidateRouterParams(const RouterParams& p) {
  if (p.scoring != RouterScoring::kSigmoid && p.scoring != RouterScoring::kSoftmax)
    Fail("router: unknown scoring function ", static_cast<int>(p.scoring));
  if (p.method != RouterMethod::kNoauxTc && p.method != RouterMethod::kGreedy &&
      p.method != RouterMethod::kGroupLimitedGreedy)
    Fail("router: unknown top-k method ", static_cast<int>(p.method));
  if (p.n_experts < 1) Fail("router: n_routed_experts = ", p.n_experts, ", expected >= 1");
  if (p.n_group < 1 || p.n_experts % p.n_group != 0)
    Fail("router: n_group = ", p.n_group, " does not divide n_routed_experts = ", p.n_experts);
  if (p.topk_group < 1 || p.topk_group > p.n_group)
    Fail("router: topk_group = ", p.topk_group, ", expected 1..n_group = ", p.n_group);
  const int selectable =
      p.method == RouterMethod::kGreedy ? p.n_experts : p.topk_group * (p.n_experts / p.n_group);
  if (p.top_k < 1 || p.top_k > selectable)
    Fail("router: num_experts_per_tok = ", p.top_k, ", expected 1..", selectable,
         " (the experts in topk_group = ", p.topk_group, " of n_group = ", p.n_group, " groups of ",
         p.n_experts / p.n_group, ")");
  if (p.method == RouterMethod::kNoauxTc && p.n_group > 1 && p.n_experts / p.n_group < 2)
    Fail("router: noaux_tc scores a group by its 2 best experts, but n_group = ", p.n_group,
         " leaves ", p.n_experts / p.n_group, " expert per group");
  if (!std::isfinite(p.routed_scaling_factor))
    Fail("router: routed_scaling_factor = ", p.routed_scaling_factor, ", expected finite");
}

int64_t RouterScratchSize(const RouterParams& p) {
  return 2 * static_cast<int64_t>(p.n_experts) + p.n_group;
}

void RouteToken(std::span<int32_t> expert_ids, std::span<float> weights,
                std::span<const float> logits, std::span<const float> bias, const RouterParams& p,
                std::span<float> scratch) {
  CheckRouteSizes(expert_ids, weights, logits, bias, p, "RouteToken");
  if (static_cast<int64_t>(scratch.size()) < RouterScratchSize(p))
    Fail("RouteToken: scratch has ", scratch.size(), " floats, expected at least ",
         RouterScratchSize(p));
  const int n_experts = p.n_experts;
  std::span<float> scores = scratch.first(n_experts);                        // [n_experts]
  std::span<float> select = scratch.subspan(n_experts, n_experts);           // [n_experts]
  std::span<float> group_score = scratch.subspan(2 * n_experts, p.n_group);  // [n_group]

  Score(scores, logits, p.scoring);
  for (int i = 0; i < n_experts; ++i) {
    const float b = bias.empty() ? scores[i] : scores[i] + bias[i];
    select[i] = std::isnan(b) ? kMinusInf : b;
  }
  if (UsesGroups(p)) {
    const int group_size = n_experts / p.n_group;
    for (int g = 0; g < p.n_group; ++g)
      group_score[g] = GroupScore(select.subspan(g * group_size, group_size), p.method);
    for (int g = 0; g < p.n_group; ++g) {
      // A group is kept when fewer than topk_group groups rank before it.
      int rank = 0;
      for (int other = 0; other < p.n_group; ++other) rank += RanksBefore(group_score, other, g);
      if (rank >= p.topk_group) std::fill_n(select.begin() + g * group_size, group_size, kMinusInf);
    }
  }
  // Pick k = 0, 1, ...: the best candidate among those ranking after the previous pick.
  for (int k = 0; k < p.top_k; ++k) {
    int best = -1;
    for (int i = 0; i < n_experts; ++i) {
      if (k > 0 && !RanksBefore(select, expert_ids[k - 1], i)) continue;
      if (best < 0 || RanksBefore(select, i, best)) best = i;
    }
    expert_ids[k] = best;
  }
  FinishWeights(weights, expert_ids, scores, p);
}

void RouteTokenRef(std::span<int32_t> expert_ids, std::span<float> weights,
                   std::span<const float> logits, std::span<const float> bias,
                   const RouterParams& p) {
  CheckRouteSizes(expert_ids, weights, logits, bias, p, "RouteTokenRef");
  const int n_experts = p.n_experts;
  std::vector<float> scores(n_experts);
  Score(scores, logits, p.scoring);
  std::vector<float> select(n_experts);
  for (int i = 0; i < n_experts; ++i) {
    select[i] = bias.empty() ? scores[i] : scores[i] + bias[i];
    if (std::isnan(select[i])) select[i] = kMinusInf;
  }
  // Sorts indices best first: higher value, ties to the smaller index.
  auto ranked = [](const std::vector<float>& value) {
    std::vector<int> order(value.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return value[a] != value[b] ? value[a] > value[b] : a < b; });
    return order;
  };
  if (UsesGroups(p)) {
    const int group_size = n_experts / p.n_group;
    std::vector<float> group_score(p.n_group);
    for (int g = 0; g < p.n_group; ++g) {
      std::vector<float> members(select.begin() + g * group_size,
                                 select.begin() + (g + 1) * group_size);
      std::sort(members.begin(), members.end(), std::greater<float>());
      group_score[g] = p.method == RouterMethod::kNoauxTc ? members[0] + members[1] : members[0];
      if (std::isnan(group_score[g])) group_score[g] = kMinusInf;
    }
    const std::vector<int> group_order = ranked(group_score);
    std::vector<bool> kept(p.n_group, false);
    for (int j = 0; j < p.topk_group; ++j) kept[group_order[j]] = true;
    for (int i = 0; i < n_experts; ++i)
      if (!kept[i / group_size]) select[i] = kMinusInf;
  }
  const std::vector<int> order = ranked(select);
  for (int k = 0; k < p.top_k; ++k) expert_ids[k] = order[k];
  FinishWeights(weights, expert_ids, scores, p);
}

}  // namespace whale
