#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace whale {
namespace {

// Independent partial sums: vectorizable without reassociating additions.
constexpr int kLanes = 8;

void CheckSameSize(size_t out, size_t in, const char* kernel, const char* in_name) {
  if (out != in) Fail(kernel, ": out has ", out, " elements but ", in_name, " has ", in);
}

}  // namespace

void Softmax(std::span<float> x) {
  if (x.empty()) return;
  float max = -std::numeric_limits<float>::infinity();
  for (float v : x) max = std::isnan(v) || v > max ? v : max;
  if (std::isnan(max)) {  // NaN propagates to the whole row.
    for (float& v : x) v = max;
    return;
  }
  // When max is −inf (all −inf) or +inf, x − max is NaN for those entries and the row goes NaN.
  for (float& v : x) v = std::exp(v - max);
  const size_t n = x.size();
  float lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
  for (int l = 0; i + l < n; ++l) lanes[l] += x[i + l];
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  for (float& v : x) v /= sum;
}

void SoftmaxRef(std::span<float> x) {
  if (x.empty()) return;
  double max = -std::numeric_limits<double>::infinity();
  bool has_nan = false;
  for (float v : x) {
    has_nan = has_nan || std::isnan(v);
    max = std::max<double>(max, v);
  }
  double sum = 0.0;
  for (float v : x) sum += std::exp(v - max);
  for (float& v : x)
    v = has_nan ? std::numeric_limits<float>::quiet_NaN()
                : static_cast<float>(std::exp(v - max) / sum);
}

void SiluMul(std::span<float> out, std::span<const float> gate, std::span<const float> up) {
  CheckSameSize(out.size(), gate.size(), "SiluMul", "gate");
  CheckSameSize(out.size(), up.size(), "SiluMul", "up");
  for (size_t i = 0; i < out.size(); ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void SiluMulRef(std::span<float> out, std::span<const float> gate, std::span<const float> up) {
  CheckSameSize(out.size(), gate.size(), "SiluMulRef", "gate");
  CheckSameSize(out.size(), up.size(), "SiluMulRef", "up");
  for (size_t i = 0; i < out.size(); ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void Sigmoid(std::span<float> out, std::span<const float> x) {
  CheckSameSize(out.size(), x.size(), "Sigmoid", "x");
  for (size_t i = 0; i < out.size(); ++i) out[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void SigmoidRef(std::span<float> out, std::span<const float> x) {
  CheckSameSize(out.size(), x.size(), "SigmoidRef", "x");
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x[i]))));
}

}  // namespace whale
