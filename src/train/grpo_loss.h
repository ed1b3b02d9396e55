// GRPO policy loss over per-token log-probabilities, with the Dr. GRPO and DAPO variants
// (training.md 5).
//
// Layout: a call covers B sampled completions (one or more groups). Per-token buffers hold the
// completions' tokens back to back, completion i owning lengths[i] consecutive entries:
//   logp, logp_old, logp_ref, grad_logp   // [sum_i lengths[i]]
//   advantages, lengths                   // [B]
// For token t of completion i, with ℓ = logp (under π_θ at the sampling temperature):
//   ρ = exp(ℓ − logp_old),  S = min(ρA_i, clip(ρ, 1−ε_lo, 1+ε_hi)·A_i)
//   K = exp(logp_ref − ℓ) − (logp_ref − ℓ) − 1   (k3, ≥ 0),   J = S − β·K
//   loss = −Σ_{i,t} w_{i,t} J_{i,t}
// Aggregation weights w (B takes the place of the group size G when a call holds several groups;
// B and Σ_j |o_j| are the options' batch totals when set):
//   kGrpo:   1/(B·|o_i|)      (mean over completions of the mean over their tokens)
//   kDapo:   1/Σ_j |o_j|      (token-level mean)
//   kDrGrpo: 1/(B·L_max)      (L_max = the generation budget, a constant)
#pragma once

#include <cstdint>
#include <span>

namespace whale {

enum class AdvantageMode { kGrpo, kDrGrpo };
enum class LossAggregation { kGrpo, kDapo, kDrGrpo };

struct GroupStats {
  double mean = 0;
  double std = 0;  // population standard deviation (divides by G)
  // All rewards equal: every advantage is 0 and the group carries no signal (DAPO drops it).
  bool zero_variance = false;
};

// advantages[i] = (r_i − mean)/(std + 1e-4) (kGrpo) or r_i − mean (kDrGrpo), for one group.
// Rewards equal to within 1e-12 (relative to their magnitude) count as zero variance.
GroupStats GroupAdvantages(std::span<double> advantages, std::span<const double> rewards,
                           AdvantageMode mode);

struct GrpoLossOptions {
  double eps_lo = 0.2;  // DAPO clip-higher: eps_lo 0.2, eps_hi 0.28
  double eps_hi = 0.2;
  double beta = 0.0;  // KL weight; logp_ref may be empty when 0
  LossAggregation aggregation = LossAggregation::kGrpo;
  int64_t max_length = 0;  // L_max, required (> 0) for kDrGrpo
  // When a caller splits one batch into several calls (micro-batches bound the activation
  // memory), the whole batch's completions and tokens: B and Σ_j |o_j| above then count the
  // batch, not the call, so the calls' gradients add up to the batch's. 0: this call's own.
  int64_t batch_completions = 0;
  int64_t batch_tokens = 0;
};

// Checks the options; throws Error naming the field and value.
void ValidateGrpoLossOptions(const GrpoLossOptions& options);

struct GrpoLossResult {
  double loss = 0;
  // Fraction of tokens whose surrogate takes the clipped branch (gradient 0): A > 0 with
  // ρ > 1+ε_hi, or A < 0 with ρ < 1−ε_lo.
  double clip_fraction = 0;
  double mean_kl = 0;     // k3 averaged over tokens (unweighted); 0 when beta is 0 and no ref
  double mean_ratio = 0;  // ρ averaged over tokens
  int64_t n_tokens = 0;
};

// Writes grad_logp = d loss / d logp per token (overwrites) and returns the loss and statistics.
// Sums run in double whatever T is.
template <typename T>
GrpoLossResult GrpoLoss(std::span<T> grad_logp, std::span<const T> logp,
                        std::span<const T> logp_old, std::span<const T> logp_ref,
                        std::span<const double> advantages, std::span<const int64_t> lengths,
                        const GrpoLossOptions& options);

}  // namespace whale
