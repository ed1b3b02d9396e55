// AdamW with global-norm gradient clipping (training.md section 3), on F32 master parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "train/train_config.h"
#include "train/train_parameters.h"
#include "util/thread_pool.h"

namespace whale {

class AdamW {
 public:
  AdamW(const OptimizerConfig& config, const ParameterSet<float>& params);

  // One step over every trainable parameter, as torch.optim.AdamW after
  // torch.nn.utils.clip_grad_norm_:
  //   norm = sqrt(Σ g²) over all trainable gradients (double, parameters in layout order);
  //   g *= min(1, clip / (norm + 1e-6));
  //   p -= lr · wd · p                       (matrices only: Parameter::decays)
  //   m = β1 m + (1 − β1) g;  v = β2 v + (1 − β2) g²
  //   p -= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
  // per element in double, stored to F32. Returns the norm before clipping. The balancing bias
  // (not trainable) is left alone. Threads split parameters; every result is independent of them.
  double Step(ParameterSet<float>& params, double lr, ThreadPool* pool);

  int64_t step() const { return step_; }
  // Moments of parameter i (layout order), for checkpoints.
  std::vector<float>& m(size_t i) { return m_[i]; }
  std::vector<float>& v(size_t i) { return v_[i]; }
  void set_step(int64_t step) { step_ = step; }

 private:
  OptimizerConfig config_;
  int64_t step_ = 0;
  std::vector<std::vector<float>> m_, v_;  // [param][numel]
};

// sqrt(Σ g²) over every trainable gradient, summed in double in layout order.
double GlobalGradNorm(const ParameterSet<float>& params);

}  // namespace whale
