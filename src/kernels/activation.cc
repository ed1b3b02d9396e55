#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/activation_simd.h"
#include "util/error.h"

namespace whale {
namespace {

void CheckSameSize(size_t out, size_t in, const char* kernel, const char* in_name) {
  if (out != in) Fail(kernel, ": out has ", out, " elements but ", in_name, " has ", in);
}

}  // namespace

void Softmax(std::span<float> x) {
  if (x.empty() || SoftmaxSimd(x.data(), x.size())) return;
  // Rows with NaN or an infinite maximum: the whole row is NaN (x − max is NaN where max is
  // ±inf, and NaN propagates), as PyTorch gives.
  std::fill(x.begin(), x.end(), std::numeric_limits<float>::quiet_NaN());
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
  SiluMulSimd(out.data(), gate.data(), up.data(), out.size());
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
  SigmoidSimd(out.data(), x.data(), out.size());
}

void SigmoidRef(std::span<float> out, std::span<const float> x) {
  CheckSameSize(out.size(), x.size(), "SigmoidRef", "x");
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x[i]))));
}

}  // namespace whale
