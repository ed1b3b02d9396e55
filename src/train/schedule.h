// The learning-rate schedule (training.md section 3): V3's shape scaled to the run's length.
#pragma once

#include <cstdint>

#include "train/train_config.h"

namespace whale {

// Learning rate of optimizer step `step` (0-based) of `total_steps`, with f = step / total_steps:
//   f < warmup:                peak * (step + 1) / (warmup * total)      linear warmup
//   f < decay_start:           peak                                      constant
//   f < decay_end:             peak * (min + (1 - min) * (1 + cos(pi * u)) / 2),
//                              u = (f - decay_start) / (decay_end - decay_start)
//   otherwise:                 peak * tail_ratio                         the low tail
double LearningRate(const ScheduleConfig& schedule, int64_t step, int64_t total_steps);

// The MTP weight and the bias-update speed at `step` (their V3 schedules).
double MtpLambda(const LossConfig& loss, int64_t step, int64_t total_steps);
double BiasGamma(const LossConfig& loss, int64_t step, int64_t total_steps);

}  // namespace whale
