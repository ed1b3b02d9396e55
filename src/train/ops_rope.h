// Training ops: interleaved rotary position embedding (conventions in ops_linear.h).
#pragma once

#include <cstdint>
#include <span>

namespace whale {

// x[n, heads, head_dim]: the rope_dim channels starting at `offset` in every head of token t are
// rotated in place to positions[t], pairing (2i, 2i + 1) with angle θ_i = fp32(position ·
// inv_freq[i]) (inv_freq[rope_dim / 2], from kernels/rope.h YarnInverseFrequencies). float: the
// inference kernel kernels/rope.h ApplyRope; double: the same F32 angle, cos/sin and rotation in
// double.
template <typename T>
void RopeForward(std::span<T> x, std::span<const int32_t> positions, int64_t n, int64_t heads,
                 int64_t head_dim, int64_t offset, int64_t rope_dim,
                 std::span<const float> inv_freq);

// dx in place: dx holds dy on entry and dx = Rᵀ·dy (rotation by −θ) on return, same layout.
template <typename T>
void RopeBackward(std::span<T> dx, std::span<const int32_t> positions, int64_t n, int64_t heads,
                  int64_t head_dim, int64_t offset, int64_t rope_dim,
                  std::span<const float> inv_freq);

}  // namespace whale
