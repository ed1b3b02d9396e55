#include "train/ops_linear.h"

#include <algorithm>
#include <type_traits>

#include "kernels/gemm.h"
#include "train/ops_check.h"

namespace whale {
namespace {

void CheckLinearSizes(std::string_view op, int64_t n, int64_t in, int64_t out) {
  CheckNonNegative(op, "n", n);
  CheckNonNegative(op, "in", in);
  CheckNonNegative(op, "out", out);
}

}  // namespace

template <typename T>
void LinearForward(std::span<T> y, std::span<const T> x, std::span<const T> w, int64_t n,
                   int64_t in, int64_t out, ThreadPool* pool) {
  CheckLinearSizes("LinearForward", n, in, out);
  CheckSpan("LinearForward", "y", y, n * out);
  CheckSpan("LinearForward", "x", x, n * in);
  CheckSpan("LinearForward", "w", w, out * in);
  if constexpr (std::is_same_v<T, float>) {
    Gemm(y, x, w, n, out, in, Trans::kNo, Trans::kYes, false, pool);
  } else {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < out; ++o) {
        T sum = 0;
        for (int64_t i = 0; i < in; ++i) sum += x[t * in + i] * w[o * in + i];
        y[t * out + o] = sum;
      }
  }
}

template <typename T>
void LinearBackward(std::span<T> dx, std::span<T> dw, std::span<const T> dy, std::span<const T> x,
                    std::span<const T> w, int64_t n, int64_t in, int64_t out, bool accumulate_dx,
                    ThreadPool* pool) {
  CheckLinearSizes("LinearBackward", n, in, out);
  CheckOptionalSpan("LinearBackward", "dx", dx, n * in);
  CheckOptionalSpan("LinearBackward", "dw", dw, out * in);
  CheckSpan("LinearBackward", "dy", dy, n * out);
  CheckSpan("LinearBackward", "x", x, n * in);
  CheckSpan("LinearBackward", "w", w, out * in);
  if constexpr (std::is_same_v<T, float>) {
    // dx[n, in] = dy[n, out] · w[out, in];  dw[out, in] += dy[n, out]ᵀ · x[n, in].
    if (!dx.empty()) Gemm(dx, dy, w, n, in, out, Trans::kNo, Trans::kNo, accumulate_dx, pool);
    if (!dw.empty()) Gemm(dw, dy, x, out, in, n, Trans::kYes, Trans::kNo, true, pool);
  } else {
    if (!dx.empty()) {
      if (!accumulate_dx) std::fill(dx.begin(), dx.end(), T{0});
      for (int64_t t = 0; t < n; ++t)
        for (int64_t o = 0; o < out; ++o) {
          const T g = dy[t * out + o];
          for (int64_t i = 0; i < in; ++i) dx[t * in + i] += g * w[o * in + i];
        }
    }
    if (!dw.empty())
      for (int64_t t = 0; t < n; ++t)
        for (int64_t o = 0; o < out; ++o) {
          const T g = dy[t * out + o];
          for (int64_t i = 0; i < in; ++i) dw[o * in + i] += g * x[t * in + i];
        }
  }
}

template <typename T>
void EmbeddingForward(std::span<T> out, std::span<const int32_t> ids, std::span<const T> table,
                      int64_t vocab, int64_t dim) {
  const int64_t n = static_cast<int64_t>(ids.size());
  CheckNonNegative("EmbeddingForward", "dim", dim);
  CheckSpan("EmbeddingForward", "out", out, n * dim);
  CheckSpan("EmbeddingForward", "table", table, vocab * dim);
  for (int64_t t = 0; t < n; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab)
      Fail("EmbeddingForward: token id ", ids[t], " at position ", t, " is outside [0, ", vocab,
           ")");
    std::copy_n(table.data() + ids[t] * dim, dim, out.data() + t * dim);
  }
}

template <typename T>
void EmbeddingBackward(std::span<T> dtable, std::span<const T> dout, std::span<const int32_t> ids,
                       int64_t vocab, int64_t dim) {
  const int64_t n = static_cast<int64_t>(ids.size());
  CheckNonNegative("EmbeddingBackward", "dim", dim);
  CheckSpan("EmbeddingBackward", "dtable", dtable, vocab * dim);
  CheckSpan("EmbeddingBackward", "dout", dout, n * dim);
  for (int64_t t = 0; t < n; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab)
      Fail("EmbeddingBackward: token id ", ids[t], " at position ", t, " is outside [0, ", vocab,
           ")");
    T* row = dtable.data() + ids[t] * dim;
    const T* g = dout.data() + t * dim;
    for (int64_t i = 0; i < dim; ++i) row[i] += g[i];
  }
}

#define WHALE_INSTANTIATE_LINEAR(T)                                                              \
  template void LinearForward<T>(std::span<T>, std::span<const T>, std::span<const T>, int64_t,  \
                                 int64_t, int64_t, ThreadPool*);                                 \
  template void LinearBackward<T>(std::span<T>, std::span<T>, std::span<const T>,                \
                                  std::span<const T>, std::span<const T>, int64_t, int64_t,      \
                                  int64_t, bool, ThreadPool*);                                   \
  template void EmbeddingForward<T>(std::span<T>, std::span<const int32_t>, std::span<const T>,  \
                                    int64_t, int64_t);                                           \
  template void EmbeddingBackward<T>(std::span<T>, std::span<const T>, std::span<const int32_t>, \
                                     int64_t, int64_t);
WHALE_INSTANTIATE_LINEAR(float)
WHALE_INSTANTIATE_LINEAR(double)
#undef WHALE_INSTANTIATE_LINEAR

}  // namespace whale
