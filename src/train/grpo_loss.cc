#include "train/grpo_loss.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace whale {

GroupStats GroupAdvantages(std::span<double> advantages, std::span<const double> rewards,
                           AdvantageMode mode) {
  WHALE_ASSERT(advantages.size() == rewards.size(), advantages.size(), " vs ", rewards.size());
  GroupStats stats;
  if (rewards.empty()) return stats;
  const double g = static_cast<double>(rewards.size());
  double sum = 0, lo = rewards[0], hi = rewards[0], scale = 0;
  for (double r : rewards) {
    sum += r;
    lo = std::min(lo, r);
    hi = std::max(hi, r);
    scale = std::max(scale, std::abs(r));
  }
  stats.mean = sum / g;
  double squares = 0;
  for (double r : rewards) squares += (r - stats.mean) * (r - stats.mean);
  stats.std = std::sqrt(squares / g);
  stats.zero_variance = hi - lo <= 1e-12 * std::max(scale, 1.0);
  for (size_t i = 0; i < rewards.size(); ++i) {
    const double centered = stats.zero_variance ? 0.0 : rewards[i] - stats.mean;
    advantages[i] = mode == AdvantageMode::kGrpo ? centered / (stats.std + 1e-4) : centered;
  }
  return stats;
}

void ValidateGrpoLossOptions(const GrpoLossOptions& options) {
  if (!(options.eps_lo >= 0 && options.eps_lo < 1)) {
    Fail("grpo: eps_lo ", options.eps_lo, " must be in [0, 1)");
  }
  if (!(options.eps_hi >= 0)) Fail("grpo: eps_hi ", options.eps_hi, " must be >= 0");
  if (!(options.beta >= 0)) Fail("grpo: beta ", options.beta, " must be >= 0");
  if (options.aggregation == LossAggregation::kDrGrpo && options.max_length <= 0) {
    Fail("grpo: Dr. GRPO aggregation needs max_length (L_max) > 0, got ", options.max_length);
  }
  if (options.batch_completions < 0 || options.batch_tokens < 0) {
    Fail("grpo: batch_completions ", options.batch_completions, " and batch_tokens ",
         options.batch_tokens, " must be >= 0 (0: the call's own)");
  }
}

template <typename T>
GrpoLossResult GrpoLoss(std::span<T> grad_logp, std::span<const T> logp,
                        std::span<const T> logp_old, std::span<const T> logp_ref,
                        std::span<const double> advantages, std::span<const int64_t> lengths,
                        const GrpoLossOptions& options) {
  ValidateGrpoLossOptions(options);
  WHALE_ASSERT(advantages.size() == lengths.size(), advantages.size(), " vs ", lengths.size());
  int64_t total = 0;
  for (int64_t n : lengths) {
    WHALE_ASSERT(n >= 0, "negative length ", n);
    total += n;
  }
  const size_t n_tokens = static_cast<size_t>(total);
  WHALE_ASSERT(
      logp.size() == n_tokens && logp_old.size() == n_tokens && grad_logp.size() == n_tokens,
      "per-token buffers must hold ", n_tokens, " entries");
  if (options.batch_completions > 0 &&
      options.batch_completions < static_cast<int64_t>(lengths.size()))
    Fail("grpo: batch_completions ", options.batch_completions, " is below the call's ",
         lengths.size(), " completions");
  if (options.batch_tokens > 0 && options.batch_tokens < total)
    Fail("grpo: batch_tokens ", options.batch_tokens, " is below the call's ", total, " tokens");
  const bool use_ref = options.beta > 0 || !logp_ref.empty();
  WHALE_ASSERT(!use_ref || logp_ref.size() == n_tokens, "logp_ref must hold ", n_tokens,
               " entries, has ", logp_ref.size());

  GrpoLossResult result;
  result.n_tokens = total;
  if (total == 0) return result;
  const double b =
      static_cast<double>(options.batch_completions > 0 ? options.batch_completions
                                                        : static_cast<int64_t>(lengths.size()));
  const double token_total =
      static_cast<double>(options.batch_tokens > 0 ? options.batch_tokens : total);
  double loss = 0, kl_sum = 0, ratio_sum = 0;
  int64_t clipped = 0;
  size_t t = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] == 0) continue;
    double w = 0;
    switch (options.aggregation) {
      case LossAggregation::kGrpo:
        w = 1.0 / (b * static_cast<double>(lengths[i]));
        break;
      case LossAggregation::kDapo:
        w = 1.0 / token_total;
        break;
      case LossAggregation::kDrGrpo:
        w = 1.0 / (b * static_cast<double>(options.max_length));
        break;
    }
    const double a = advantages[i];
    for (int64_t k = 0; k < lengths[i]; ++k, ++t) {
      const double l = static_cast<double>(logp[t]);
      const double rho = std::exp(l - static_cast<double>(logp_old[t]));
      const double clipped_rho = std::clamp(rho, 1.0 - options.eps_lo, 1.0 + options.eps_hi);
      const double unclipped_term = rho * a, clipped_term = clipped_rho * a;
      // The min picks the clipped branch only where it is strictly smaller; there ρ is outside
      // the band and the surrogate is constant in ℓ.
      const bool is_clipped = clipped_term < unclipped_term;
      const double s = is_clipped ? clipped_term : unclipped_term;
      const double ds = is_clipped ? 0.0 : unclipped_term;
      double kl = 0, dkl = 0;
      if (use_ref) {
        const double log_q = static_cast<double>(logp_ref[t]) - l;  // log(π_ref/π_θ)
        const double q = std::exp(log_q);
        kl = q - log_q - 1.0;
        dkl = 1.0 - q;
      }
      loss -= w * (s - options.beta * kl);
      grad_logp[t] = static_cast<T>(-w * (ds - options.beta * dkl));
      clipped += is_clipped ? 1 : 0;
      kl_sum += kl;
      ratio_sum += rho;
    }
  }
  result.loss = loss;
  result.clip_fraction = static_cast<double>(clipped) / static_cast<double>(total);
  result.mean_kl = kl_sum / static_cast<double>(total);
  result.mean_ratio = ratio_sum / static_cast<double>(total);
  return result;
}

template GrpoLossResult GrpoLoss<float>(std::span<float>, std::span<const float>,
                                        std::span<const float>, std::span<const float>,
                                        std::span<const double>, std::span<const int64_t>,
                                        const GrpoLossOptions&);
template GrpoLossResult GrpoLoss<double>(std::span<double>, std::span<const double>,
                                         std::span<const double>, std::span<const double>,
                                         std::span<const double>, std::span<const int64_t>,
                                         const GrpoLossOptions&);

}  // namespace whale
