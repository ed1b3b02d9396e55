// Training ops: SwiGLU out = silu(gate) · up (conventions in ops_linear.h).
#pragma once

#include <span>

#include "util/thread_pool.h"

namespace whale {

// out = silu(gate) ⊙ up, silu(g) = g · σ(g), elementwise over equal-sized spans. float: the
// inference kernel kernels/activation.h SiluMul, over chunks on the pool's threads (may be null).
// out may not alias gate or up.
template <typename T>
void SwigluForward(std::span<T> out, std::span<const T> gate, std::span<const T> up,
                   ThreadPool* pool = nullptr);

// dgate = dout ⊙ up ⊙ σ(g)(1 + g(1 − σ(g))), dup = dout ⊙ silu(g), both `=`. float: σ through
// ops_math.h FastExp (2 ulps), threaded like the forward; double: std::exp.
template <typename T>
void SwigluBackward(std::span<T> dgate, std::span<T> dup, std::span<const T> dout,
                    std::span<const T> gate, std::span<const T> up, ThreadPool* pool = nullptr);

}  // namespace whale
