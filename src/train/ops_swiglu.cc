#include "train/ops_swiglu.h"

#include <cmath>
#include <type_traits>

#include "kernels/activation.h"
#include "train/ops_check.h"
#include "train/ops_math.h"
#include "util/thread_pool.h"

namespace whale {

namespace {

// Elements per parallel chunk: enough to amortize a fork/join of the pool.
constexpr int64_t kSwigluGrain = 16384;

template <typename T>
std::span<T> Part(std::span<T> x, int64_t begin, int64_t end) {
  return x.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
}

}  // namespace

template <typename T>
void SwigluForward(std::span<T> out, std::span<const T> gate, std::span<const T> up,
                   ThreadPool* pool) {
  const int64_t n = static_cast<int64_t>(gate.size());
  CheckSpan("SwigluForward", "out", out, n);
  CheckSpan("SwigluForward", "up", up, n);
  if constexpr (std::is_same_v<T, float>) {
    ParallelRanges(pool, n, kSwigluGrain, [&](int64_t begin, int64_t end) {
      SiluMul(Part(out, begin, end), Part(gate, begin, end), Part(up, begin, end));
    });
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
  }
}

template <typename T>
void SwigluBackward(std::span<T> dgate, std::span<T> dup, std::span<const T> dout,
                    std::span<const T> gate, std::span<const T> up, ThreadPool* pool) {
  const int64_t n = static_cast<int64_t>(gate.size());
  CheckSpan("SwigluBackward", "dgate", dgate, n);
  CheckSpan("SwigluBackward", "dup", dup, n);
  CheckSpan("SwigluBackward", "dout", dout, n);
  CheckSpan("SwigluBackward", "up", up, n);
  ParallelRanges(pool, n, kSwigluGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T g = gate[i];
      T e;  // e^−g; FastExp needs an argument <= 88, and below e^−80 σ is 0 to F32 anyway
      if constexpr (std::is_same_v<T, float>)
        e = FastExp(-g < 80.0f ? -g : 80.0f);
      else
        e = std::exp(-g);
      const T sigma = 1 / (1 + e);
      const T silu = g * sigma;
      // d silu / dg = σ + g·σ(1 − σ) = σ(1 + g(1 − σ)).
      dgate[i] = dout[i] * up[i] * sigma * (1 + g * (1 - sigma));
      dup[i] = dout[i] * silu;
    }
  });
}

#define WHALE_INSTANTIATE_SWIGLU(T)                                                    \
  template void SwigluForward<T>(std::span<T>, std::span<const T>, std::span<const T>, \
                                 ThreadPool*);                                         \
  template void SwigluBackward<T>(std::span<T>, std::span<T>, std::span<const T>,      \
                                  std::span<const T>, std::span<const T>, ThreadPool*);
WHALE_INSTANTIATE_SWIGLU(float)
WHALE_INSTANTIATE_SWIGLU(double)
#undef WHALE_INSTANTIATE_SWIGLU

}  // namespace whale
