#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace whale {

double LearningRate(const ScheduleConfig& s, int64_t step, int64_t total_steps) {
  const double total = static_cast<double>(std::max<int64_t>(total_steps, 1));
  const double f = static_cast<double>(step) / total;
  const double warmup_steps = s.warmup * total;
  if (f < s.warmup)
    return s.peak_lr * std::min(1.0, (static_cast<double>(step) + 1) / warmup_steps);
  if (f < s.decay_start) return s.peak_lr;
  if (f < s.decay_end) {
    const double u = (f - s.decay_start) / (s.decay_end - s.decay_start);
    return s.peak_lr *
           (s.min_ratio + (1 - s.min_ratio) * 0.5 * (1 + std::cos(std::numbers::pi * u)));
  }
  return s.peak_lr * s.tail_ratio;
}

double MtpLambda(const LossConfig& loss, int64_t step, int64_t total_steps) {
  const double f =
      static_cast<double>(step) / static_cast<double>(std::max<int64_t>(total_steps, 1));
  return f < loss.mtp_switch ? loss.mtp_lambda : loss.mtp_lambda_late;
}

double BiasGamma(const LossConfig& loss, int64_t step, int64_t total_steps) {
  const double f =
      static_cast<double>(step) / static_cast<double>(std::max<int64_t>(total_steps, 1));
  return f < loss.gamma_off ? loss.bias_gamma : 0.0;
}

}  // namespace whale
