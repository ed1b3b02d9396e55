// Rotary position embedding with YaRN frequency scaling (spec 4.4, 4.5), interleaved pairs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace whale {

// The rope_dim / 2 rotation frequencies ω_i, computed in float32 step by step as DeepSeek's
// reference precompute_freqs_cis does (spec 4.5):
//   freq_i = 1 / base^(2i / rope_dim)   exponent fp32(2i) / fp32(rope_dim); the power is
//                                       evaluated in double and rounded once; 1 / p in fp32
//   factor <= 1: ω_i = freq_i (plain RoPE)
//   otherwise:   low/high from the YaRN correction range over original_max_positions,
//                ramp_i = clamp((i - low) / (high - low), 0, 1), smooth_i = 1 - ramp_i,
//                ω_i = freq_i / factor * (1 - smooth_i) + freq_i * smooth_i, every op in fp32.
// Throws whale::Error on an odd or non-positive rope_dim, base <= 1, or (when scaling) a
// non-positive original_max_positions or betas.
std::vector<float> YarnInverseFrequencies(int64_t rope_dim, double base, double factor,
                                          int64_t original_max_positions, double beta_fast,
                                          double beta_slow);

// The same frequencies with every step in double: the reference for the float32 version.
std::vector<double> YarnInverseFrequenciesRef(int64_t rope_dim, double base, double factor,
                                              int64_t original_max_positions, double beta_fast,
                                              double beta_slow);

// YaRN's attention magnitude correction: 0.1 · mscale · ln(factor) + 1, or 1 when factor <= 1.
// The softmax scale is multiplied by its square (spec 4.5).
double YarnMscale(double factor, double mscale);

// Rotates the first rope_dim values of n_vectors vectors (vector v starts at x[v * stride]) to
// `position`, pairing (2i, 2i + 1) as x[2i] + j·x[2i + 1] times e^{j·θ_i}.
// θ_i = fp32(float(position) * inv_freq[i]): one F32 product, exactly the reference's fp32
// outer(arange(seq), ω) for positions below 2^24. cos θ_i and sin θ_i come from std::cos/std::sin
// on that float; then y[2i] = x[2i]·cos − x[2i+1]·sin and y[2i+1] = x[2i]·sin + x[2i+1]·cos in
// F32 (no fused multiply-add). inv_freq has rope_dim / 2 entries. Throws whale::Error on sizes
// that do not fit.
void ApplyRope(std::span<float> x, int64_t n_vectors, int64_t stride, int64_t rope_dim,
               int64_t position, std::span<const float> inv_freq);

// The reference: the same F32 angle, then cos, sin and the rotation in double, one rounding.
void ApplyRopeRef(std::span<float> x, int64_t n_vectors, int64_t stride, int64_t rope_dim,
                  int64_t position, std::span<const float> inv_freq);

}  // namespace whale
