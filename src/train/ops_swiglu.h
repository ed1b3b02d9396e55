// Training ops: SwiGLU out = silu(gate) · up (conventions in ops_linear.h).
#pragma once

#include <span>

namespace whale {

// out = silu(gate) ⊙ up, silu(g) = g · σ(g), elementwise over equal-sized spans. float: the
// inference kernel kernels/activation.h SiluMul. out may not alias gate or up.
template <typename T>
void SwigluForward(std::span<T> out, std::span<const T> gate, std::span<const T> up);

// dgate = dout ⊙ up ⊙ σ(g)(1 + g(1 − σ(g))), dup = dout ⊙ silu(g), both `=`.
template <typename T>
void SwigluBackward(std::span<T> dgate, std::span<T> dup, std::span<const T> dout,
                    std::span<const T> gate, std::span<const T> up);

}  // namespace whale
