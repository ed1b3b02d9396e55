// Training ops: MoE router (scores, biased group-limited top-k selection, gate weights) and the
// sequence-wise balance loss (conventions in ops_linear.h). Spec training.md 1-2, deepseek-v3.md 5.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/router.h"

namespace whale {

// For n tokens with router logits[n, E] (E = p.n_experts, K = p.top_k):
//   scores[n, E]     = sigmoid(logits) or softmax(logits) over the row (p.scoring), saved
//   expert_ids[n, K] = kernels/router.h RouteToken's selection from scores + bias (bias [E] or
//                      empty); selection has no gradient
//   weights[n, K]    = s[ids] / Σ_k s[ids] (if p.norm_topk_prob) · p.routed_scaling_factor
// float: ids and weights are exactly RouteToken's (the inference router); double: the selection
// runs on the F32-rounded logits, scores and weights in double.
template <typename T>
void RouterForward(std::span<int32_t> expert_ids, std::span<T> weights, std::span<T> scores,
                   std::span<const T> logits, std::span<const float> bias, const RouterParams& p,
                   int64_t n);

// dlogits[n, E] = (the gradient through the weights of the selected experts, given dweights[n, K],
// plus dscores[n, E] when not empty — e.g. from BalanceLossBackward) pulled back through the
// scoring function. `=`.
template <typename T>
void RouterBackward(std::span<T> dlogits, std::span<const T> dweights, std::span<const T> dscores,
                    std::span<const T> scores, std::span<const int32_t> expert_ids,
                    const RouterParams& p, int64_t n);

// Sequence-wise balance loss of one MoE layer over n_seqs sequences of seq_len tokens (rows
// [seq, token] of scores[n, E] and expert_ids[n, K] from RouterForward):
//   per sequence: f_i = E / (K · seq_len) · #{t : i selected for t}   (no gradient)
//                 P_i = mean_t s'_{i,t},  s'_{i,t} = s_{i,t} / Σ_j s_{j,t}
//                 L_seq = alpha · Σ_i f_i P_i
//   returns the mean of L_seq over the sequences (every position counts, loss target or not).
template <typename T>
T BalanceLossForward(std::span<const T> scores, std::span<const int32_t> expert_ids, int64_t n_seqs,
                     int64_t seq_len, int64_t n_experts, int64_t top_k, double alpha);

// dscores[n, E] += dloss · ∂(BalanceLossForward)/∂scores.
template <typename T>
void BalanceLossBackward(std::span<T> dscores, T dloss, std::span<const T> scores,
                         std::span<const int32_t> expert_ids, int64_t n_seqs, int64_t seq_len,
                         int64_t n_experts, int64_t top_k, double alpha);

}  // namespace whale
