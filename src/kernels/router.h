// MoE routing for one token (spec 5.2, 5.3): scores, group-limited selection, top-k, weights.
#pragma once

#include <cstdint>
#include <span>

namespace whale {

enum class RouterScoring { kSigmoid, kSoftmax };
// kNoauxTc: V3 (group score = sum of the 2 best biased scores); kGreedy: V2-Lite (no groups);
// kGroupLimitedGreedy: V2 (group score = best score in the group).
enum class RouterMethod { kNoauxTc, kGreedy, kGroupLimitedGreedy };

struct RouterParams {
  RouterScoring scoring;
  RouterMethod method;
  int n_experts, n_group, topk_group, top_k;
  bool norm_topk_prob;
  float routed_scaling_factor;
};

// Throws whale::Error naming the field unless: n_experts >= 1, n_group >= 1 divides n_experts,
// 1 <= topk_group <= n_group, 1 <= top_k <= the experts that can be selected (all of them for
// kGreedy, topk_group whole groups otherwise), groups of at least 2 experts for kNoauxTc with
// n_group > 1, and a finite routed_scaling_factor.
void ValidateRouterParams(const RouterParams& p);

// Floats of scratch RouteToken needs: 2 * n_experts + n_group.
int64_t RouterScratchSize(const RouterParams& p);

// Routes one token, all in F32.
//   s = sigmoid(logits) or softmax(logits) (p.scoring); the weights come from s.
//   Selection scores b = s + bias (bias: [n_experts] for kNoauxTc, or empty for none; it must be
//   empty for the other methods). NaN selection scores count as −inf.
//   Groups (kNoauxTc, kGroupLimitedGreedy with n_group > 1): experts [g·E/G, (g+1)·E/G) form
//   group g; group score = b1 + b2 of its two best (kNoauxTc) or its best b
//   (kGroupLimitedGreedy); the topk_group best groups are kept (ties: smaller group index) and
//   every expert of the other groups gets b = −inf.
//   expert_ids[top_k] = the top_k best b, best first, ties to the smaller expert index.
//   weights[k] = s[expert_ids[k]], divided by their sum (no epsilon) if norm_topk_prob, then
//   multiplied by routed_scaling_factor.
// logits: [n_experts]; scratch: at least RouterScratchSize(p) floats. Throws whale::Error on
// invalid params or sizes.
void RouteToken(std::span<int32_t> expert_ids, std::span<float> weights,
                std::span<const float> logits, std::span<const float> bias, const RouterParams& p,
                std::span<float> scratch);

// The reference: the same scores (Sigmoid / Softmax of activation.h), then the selection done
// literally by sorting experts and groups with explicit tie rules and masking with −inf.
void RouteTokenRef(std::span<int32_t> expert_ids, std::span<float> weights,
                   std::span<const float> logits, std::span<const float> bias,
                   const RouterParams& p);

}  // namespace whale
