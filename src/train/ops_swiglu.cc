#include "train/ops_swiglu.h"

#include <cmath>
#include <type_traits>

#include "kernels/activation.h"
#include "train/ops_check.h"

namespace whale {

template <typename T>
void SwigluForward(std::span<T> out, std::span<const T> gate, std::span<const T> up) {
  const int64_t n = static_cast<int64_t>(gate.size());
  CheckSpan("SwigluForward", "out", out, n);
  CheckSpan("SwigluForward", "up", up, n);
  if constexpr (std::is_same_v<T, float>) {
    SiluMul(out, gate, up);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
  }
}

template <typename T>
void SwigluBackward(std::span<T> dgate, std::span<T> dup, std::span<const T> dout,
                    std::span<const T> gate, std::span<const T> up) {
  const int64_t n = static_cast<int64_t>(gate.size());
  CheckSpan("SwigluBackward", "dgate", dgate, n);
  CheckSpan("SwigluBackward", "dup", dup, n);
  CheckSpan("SwigluBackward", "dout", dout, n);
  CheckSpan("SwigluBackward", "up", up, n);
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sigma = 1 / (1 + std::exp(-g));
    const T silu = g * sigma;
    // d silu / dg = σ + g·σ(1 − σ) = σ(1 + g(1 − σ)).
    dgate[i] = dout[i] * up[i] * sigma * (1 + g * (1 - sigma));
    dup[i] = dout[i] * silu;
  }
}

#define WHALE_INSTANTIATE_SWIGLU(T)                                                     \
  template void SwigluForward<T>(std::span<T>, std::span<const T>, std::span<const T>); \
  template void SwigluBackward<T>(std::span<T>, std::span<T>, std::span<const T>,       \
                                  std::span<const T>, std::span<const T>);
WHALE_INSTANTIATE_SWIGLU(float)
WHALE_INSTANTIATE_SWIGLU(double)
#undef WHALE_INSTANTIATE_SWIGLU

}  // namespace whale
