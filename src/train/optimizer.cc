#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace whale {

AdamW::AdamW(const OptimizerConfig& config, const ParameterSet<float>& params) : config_(config) {
  for (const auto& p : params.all()) {
    m_.emplace_back(p.numel(), 0.0f);
    v_.emplace_back(p.numel(), 0.0f);
  }
}

double GlobalGradNorm(const ParameterSet<float>& params) {
  double sum = 0;
  for (const auto& p : params.all()) {
    if (!p.trainable()) continue;
    for (float g : p.grad) sum += static_cast<double>(g) * g;
  }
  return std::sqrt(sum);
}

double AdamW::Step(ParameterSet<float>& params, double lr, ThreadPool* pool) {
  const double norm = GlobalGradNorm(params);
  const double clip =
      config_.clip_norm > 0 ? std::min(1.0, config_.clip_norm / (norm + 1e-6)) : 1.0;
  ++step_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double correction1 = 1 - std::pow(b1, static_cast<double>(step_));
  const double sqrt_correction2 = std::sqrt(1 - std::pow(b2, static_cast<double>(step_)));
  const double step_size = lr / correction1;
  auto& list = params.all();
  const auto update = [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) {
      Parameter<float>& p = list[i];
      if (!p.trainable()) continue;
      const double decay = p.decays() ? 1 - lr * config_.weight_decay : 1.0;
      float* value = p.value.data();
      float* m = m_[i].data();
      float* v = v_[i].data();
      for (int64_t j = 0; j < p.numel(); ++j) {
        const double g = static_cast<double>(p.grad[j]) * clip;
        const double mj = b1 * m[j] + (1 - b1) * g;
        const double vj = b2 * v[j] + (1 - b2) * g * g;
        m[j] = static_cast<float>(mj);
        v[j] = static_cast<float>(vj);
        const double denom = std::sqrt(vj) / sqrt_correction2 + config_.eps;
        value[j] = static_cast<float>(value[j] * decay - step_size * mj / denom);
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(list.size(), 1, update);
  } else {
    update(0, list.size(), 0);
  }
  return norm;
}

}  // namespace whale
