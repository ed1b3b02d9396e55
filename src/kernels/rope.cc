#include "kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "util/error.h"

namespace whale {
namespace {

struct CorrectionRange {
  double low, high;
};

void CheckYarnArgs(int64_t rope_dim, double base, double factor, int64_t original_max_positions,
                   double beta_fast, double beta_slow) {
  if (rope_dim <= 0 || rope_dim % 2 != 0)
    Fail("YaRN: rope_dim = ", rope_dim, ", expected a positive even number");
  if (!(base > 1.0)) Fail("YaRN: rope base (rope_theta) = ", base, ", expected > 1");
  if (factor > 1.0) {
    if (original_max_positions <= 0)
      Fail("YaRN: original_max_position_embeddings = ", original_max_positions, ", expected > 0");
    if (!(beta_fast > 0.0) || !(beta_slow > 0.0))
      Fail("YaRN: beta_fast = ", beta_fast, ", beta_slow = ", beta_slow, ", expected both > 0");
  }
}

// The dimension index whose wavelength makes `rotations` turns over original_max_positions.
double CorrectionDim(double rotations, int64_t rope_dim, double base,
                     int64_t original_max_positions) {
  return static_cast<double>(rope_dim) *
         std::log(static_cast<double>(original_max_positions) /
                  (rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(base));
}

// The reference's find_correction_range, with linear_ramp_factor's "low == high" nudge applied.
CorrectionRange FindCorrectionRange(int64_t rope_dim, double base, int64_t original_max_positions,
                                    double beta_fast, double beta_slow) {
  const double low =
      std::max(std::floor(CorrectionDim(beta_fast, rope_dim, base, original_max_positions)), 0.0);
  const double high =
      std::min(std::ceil(CorrectionDim(beta_slow, rope_dim, base, original_max_positions)),
               static_cast<double>(rope_dim - 1));
  return {low, low == high ? high + 0.001 : high};
}

void CheckRopeArgs(std::span<float> x, int64_t n_vectors, int64_t stride, int64_t rope_dim,
                   int64_t position, std::span<const float> inv_freq) {
  if (rope_dim <= 0 || rope_dim % 2 != 0)
    Fail("ApplyRope: rope_dim = ", rope_dim, ", expected a positive even number");
  if (static_cast<int64_t>(inv_freq.size()) != rope_dim / 2)
    Fail("ApplyRope: inv_freq has ", inv_freq.size(),
         " entries, expected rope_dim / 2 = ", rope_dim / 2);
  if (n_vectors < 0 || (n_vectors > 1 && stride < rope_dim))
    Fail("ApplyRope: ", n_vectors, " vectors with stride ", stride, " overlap (rope_dim ", rope_dim,
         ")");
  if (position < 0) Fail("ApplyRope: position ", position, " is negative");
  if (n_vectors > 0 && static_cast<int64_t>(x.size()) < (n_vectors - 1) * stride + rope_dim)
    Fail("ApplyRope: x has ", x.size(), " elements, expected at least (", n_vectors, " - 1) * ",
         stride, " + ", rope_dim);
}

}  // namespace

std::vector<float> YarnInverseFrequencies(int64_t rope_dim, double base, double factor,
                                          int64_t original_max_positions, double beta_fast,
                                          double beta_slow) {
  CheckYarnArgs(rope_dim, base, factor, original_max_positions, beta_fast, beta_slow);
  const int64_t half = rope_dim / 2;
  std::vector<float> freq(half);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rope_dim);
    const auto power = static_cast<float>(
        std::pow(static_cast<double>(static_cast<float>(base)), static_cast<double>(exponent)));
    freq[i] = 1.0f / power;
  }
  if (!(factor > 1.0)) return freq;
  const CorrectionRange range =
      FindCorrectionRange(rope_dim, base, original_max_positions, beta_fast, beta_slow);
  const auto low = static_cast<float>(range.low);
  const auto width = static_cast<float>(range.high - range.low);
  const auto factor_f = static_cast<float>(factor);
  for (int64_t i = 0; i < half; ++i) {
    const float ramp = std::clamp((static_cast<float>(i) - low) / width, 0.0f, 1.0f);
    const float smooth = 1.0f - ramp;
    freq[i] = freq[i] / factor_f * (1.0f - smooth) + freq[i] * smooth;
  }
  return freq;
}

std::vector<double> YarnInverseFrequenciesRef(int64_t rope_dim, double base, double factor,
                                              int64_t original_max_positions, double beta_fast,
                                              double beta_slow) {
  CheckYarnArgs(rope_dim, base, factor, original_max_positions, beta_fast, beta_slow);
  const int64_t half = rope_dim / 2;
  std::vector<double> freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(rope_dim));
  if (!(factor > 1.0)) return freq;
  const CorrectionRange range =
      FindCorrectionRange(rope_dim, base, original_max_positions, beta_fast, beta_slow);
  for (int64_t i = 0; i < half; ++i) {
    const double ramp =
        std::clamp((static_cast<double>(i) - range.low) / (range.high - range.low), 0.0, 1.0);
    freq[i] = freq[i] / factor * ramp + freq[i] * (1.0 - ramp);
  }
  return freq;
}

double YarnMscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

void ApplyRope(std::span<float> x, int64_t n_vectors, int64_t stride, int64_t rope_dim,
               int64_t position, std::span<const float> inv_freq) {
  CheckRopeArgs(x, n_vectors, stride, rope_dim, position, inv_freq);
  const auto p = static_cast<float>(position);
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    const float angle = p * inv_freq[i];
    const float c = std::cos(angle);
    const float s = std::sin(angle);
    for (int64_t v = 0; v < n_vectors; ++v) {
      float* pair = x.data() + v * stride + 2 * i;
      const float x0 = pair[0];
      const float x1 = pair[1];
      pair[0] = x0 * c - x1 * s;
      pair[1] = x0 * s + x1 * c;
    }
  }
}

void ApplyRopeRef(std::span<float> x, int64_t n_vectors, int64_t stride, int64_t rope_dim,
                  int64_t position, std::span<const float> inv_freq) {
  CheckRopeArgs(x, n_vectors, stride, rope_dim, position, inv_freq);
  for (int64_t v = 0; v < n_vectors; ++v)
    for (int64_t i = 0; i < rope_dim / 2; ++i) {
      const double angle = static_cast<float>(position) * inv_freq[i];  // the F32 product
      const double x0 = x[v * stride + 2 * i];
      const double x1 = x[v * stride + 2 * i + 1];
      x[v * stride + 2 * i] = static_cast<float>(x0 * std::cos(angle) - x1 * std::sin(angle));
      x[v * stride + 2 * i + 1] = static_cast<float>(x0 * std::sin(angle) + x1 * std::cos(angle));
    }
}

}  // namespace whale
