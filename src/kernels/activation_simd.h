// The dispatched inner kernels of the activations (kernels/activation.h); activation.cc owns
// validation and the rows these do not take, activation_simd.cc the per-target code.
#pragma once

#include <cstddef>

namespace whale {

// x[0, n) = softmax(x) in place when every entry is a number and the maximum is finite; returns
// false (x untouched) otherwise, for the caller's exact handling of NaN and infinite rows.
bool SoftmaxSimd(float* x, size_t n);
// out = silu(gate) · up over n elements; out may alias gate or up.
void SiluMulSimd(float* out, const float* gate, const float* up, size_t n);
// out = 1 / (1 + e^−x) over n elements; out may alias x.
void SigmoidSimd(float* out, const float* x, size_t n);

}  // namespace whale
