#include "train/ops_rope.h"

#include <cmath>
#include <type_traits>

#include "kernels/rope.h"
#include "train/ops_check.h"

namespace whale {
namespace {

void CheckRopeArgs(std::string_view op, size_t x_size, std::span<const int32_t> positions,
                   int64_t n, int64_t heads, int64_t head_dim, int64_t offset, int64_t rope_dim,
                   std::span<const float> inv_freq) {
  CheckNonNegative(op, "n", n);
  CheckNonNegative(op, "heads", heads);
  if (rope_dim < 2 || rope_dim % 2 != 0)
    Fail(op, ": rope_dim = ", rope_dim, "; expected a positive even number");
  if (offset < 0 || offset + rope_dim > head_dim)
    Fail(op, ": channels [", offset, ", ", offset + rope_dim, ") do not fit a head of ", head_dim);
  if (static_cast<int64_t>(x_size) != n * heads * head_dim)
    Fail(op, ": x has ", x_size,
         " elements; expected n * heads * head_dim = ", n * heads * head_dim);
  CheckSpan(op, "positions", positions, n);
  CheckSpan(op, "inv_freq", inv_freq, rope_dim / 2);
  for (int64_t t = 0; t < n; ++t)
    if (positions[t] < 0) Fail(op, ": position ", positions[t], " at row ", t, " is negative");
}

// Rotates every pair of the rope channels of token t by `sign`·θ, θ as kernels/rope.h computes
// it (one F32 product); cos and sin of the F32 angle in T.
template <typename T>
void Rotate(T* token, int64_t heads, int64_t head_dim, int64_t offset, int64_t rope_dim,
            int32_t position, std::span<const float> inv_freq, T sign) {
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[i];
    const T c = static_cast<T>(std::cos(static_cast<T>(angle)));
    const T s = sign * static_cast<T>(std::sin(static_cast<T>(angle)));
    for (int64_t h = 0; h < heads; ++h) {
      T* pair = token + h * head_dim + offset + 2 * i;
      const T x0 = pair[0], x1 = pair[1];
      pair[0] = x0 * c - x1 * s;
      pair[1] = x0 * s + x1 * c;
    }
  }
}

}  // namespace

template <typename T>
void RopeForward(std::span<T> x, std::span<const int32_t> positions, int64_t n, int64_t heads,
                 int64_t head_dim, int64_t offset, int64_t rope_dim,
                 std::span<const float> inv_freq) {
  CheckRopeArgs("RopeForward", x.size(), positions, n, heads, head_dim, offset, rope_dim, inv_freq);
  const int64_t row = heads * head_dim;
  for (int64_t t = 0; t < n; ++t) {
    if constexpr (std::is_same_v<T, float>) {
      if (heads > 0)
        ApplyRope(x.subspan(t * row + offset, (heads - 1) * head_dim + rope_dim), heads, head_dim,
                  rope_dim, positions[t], inv_freq);
    } else {
      Rotate<T>(x.data() + t * row, heads, head_dim, offset, rope_dim, positions[t], inv_freq, 1);
    }
  }
}

template <typename T>
void RopeBackward(std::span<T> dx, std::span<const int32_t> positions, int64_t n, int64_t heads,
                  int64_t head_dim, int64_t offset, int64_t rope_dim,
                  std::span<const float> inv_freq) {
  CheckRopeArgs("RopeBackward", dx.size(), positions, n, heads, head_dim, offset, rope_dim,
                inv_freq);
  // The rotation is orthogonal: its transpose is the rotation by −θ.
  for (int64_t t = 0; t < n; ++t)
    Rotate<T>(dx.data() + t * heads * head_dim, heads, head_dim, offset, rope_dim, positions[t],
              inv_freq, -1);
}

#define WHALE_INSTANTIATE_ROPE(T)                                                                  \
  template void RopeForward<T>(std::span<T>, std::span<const int32_t>, int64_t, int64_t, int64_t,  \
                               int64_t, int64_t, std::span<const float>);                          \
  template void RopeBackward<T>(std::span<T>, std::span<const int32_t>, int64_t, int64_t, int64_t, \
                                int64_t, int64_t, std::span<const float>);
WHALE_INSTANTIATE_ROPE(float)
WHALE_INSTANTIATE_ROPE(double)
#undef WHALE_INSTANTIATE_ROPE

}  // namespace whale
