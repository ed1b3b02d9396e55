// Elementwise activations and the softmax, in F32.
#pragma once

#include <span>

namespace whale {

// x = softmax(x) in place, over the whole span: e^(x_i − max) / Σ e^(x_j − max), F32 throughout.
// −inf entries get probability 0. A row whose entries are all −inf (or that contains NaN or +inf)
// comes out as NaN, as PyTorch's softmax does. An empty span is left alone.
void Softmax(std::span<float> x);
// The reference: exponentials and the sum in double, one rounding per element.
void SoftmaxRef(std::span<float> x);

// out = silu(gate) · up, silu(g) = g · σ(g) = g / (1 + e^−g), F32. out may alias gate or up.
// Throws whale::Error when the three sizes differ.
void SiluMul(std::span<float> out, std::span<const float> gate, std::span<const float> up);
void SiluMulRef(std::span<float> out, std::span<const float> gate, std::span<const float> up);

// out = σ(x) = 1 / (1 + e^−x), F32; σ(−inf) = 0, σ(+inf) = 1. out may alias x.
// Throws whale::Error when the sizes differ.
void Sigmoid(std::span<float> out, std::span<const float> x);
void SigmoidRef(std::span<float> out, std::span<const float> x);

}  // namespace whale
