#include "train/ops_norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/norm.h"
#include "tensor/dtype.h"
#include "train/ops_check.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

// Rows per parallel chunk. The backward sums dweight per chunk, then the chunks in order: a
// fixed order, so results do not depend on the thread count.
constexpr int64_t kRowChunk = 64;

// Row t of RmsNormBackward: dx (unless empty) and, when dweight is not null, dweight[dim] +=.
template <typename T>
void BackwardRow(std::span<T> dx, T* dweight, std::span<const T> dy, std::span<const T> x,
                 std::span<const T> weight, std::span<const T> rstd, int64_t t, int64_t dim,
                 bool accumulate_dx) {
  const T* xr = x.data() + t * dim;
  const T* g = dy.data() + t * dim;
  const T r = rstd[t];
  if (dweight != nullptr)
    for (int64_t i = 0; i < dim; ++i) dweight[i] += g[i] * xr[i] * r;
  if (dx.empty()) return;
  // y = x·r·w with r = (Σx²/dim + eps)^-1/2, so ∂r/∂x_i = −r³·x_i/dim.
  double dot = 0;  // Σ_i w_i·dy_i·x_i
  for (int64_t i = 0; i < dim; ++i) dot += static_cast<double>(weight[i]) * g[i] * xr[i];
  const T coefficient = static_cast<T>(dot * r * r * r / static_cast<double>(dim));
  T* d = dx.data() + t * dim;
  for (int64_t i = 0; i < dim; ++i) {
    const T value = r * weight[i] * g[i] - xr[i] * coefficient;
    d[i] = accumulate_dx ? d[i] + value : value;
  }
}

}  // namespace

template <typename T>
void RmsNormForward(std::span<T> y, std::span<T> rstd, std::span<const T> x,
                    std::span<const T> weight, int64_t n, int64_t dim, double eps,
                    ThreadPool* pool) {
  CheckNonNegative("RmsNormForward", "n", n);
  if (dim < 1) Fail("RmsNormForward: dim = ", dim, "; expected >= 1");
  CheckSpan("RmsNormForward", "y", y, n * dim);
  CheckSpan("RmsNormForward", "rstd", rstd, n);
  CheckSpan("RmsNormForward", "x", x, n * dim);
  CheckSpan("RmsNormForward", "weight", weight, dim);
  // The saved scale: sum of squares in double (the backward only needs it accurate, not bitwise
  // equal to the forward kernel's).
  ParallelRanges(pool, n, kRowChunk, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      double sum = 0;
      for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[t * dim + i]) * x[t * dim + i];
      rstd[t] = static_cast<T>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
    }
    if constexpr (std::is_same_v<T, float>) {
      const auto rows = [&](auto span) {
        return span.subspan(static_cast<size_t>(begin * dim),
                            static_cast<size_t>((end - begin) * dim));
      };
      RmsNorm(rows(y), rows(x), end - begin, dim, DType::F32, weight.data(),
              static_cast<float>(eps));
    } else {
      for (int64_t t = begin; t < end; ++t)
        for (int64_t i = 0; i < dim; ++i) y[t * dim + i] = x[t * dim + i] * rstd[t] * weight[i];
    }
  });
}

template <typename T>
void RmsNormBackward(std::span<T> dx, std::span<T> dweight, std::span<const T> dy,
                     std::span<const T> x, std::span<const T> weight, std::span<const T> rstd,
                     int64_t n, int64_t dim, bool accumulate_dx, ThreadPool* pool) {
  CheckNonNegative("RmsNormBackward", "n", n);
  if (dim < 1) Fail("RmsNormBackward: dim = ", dim, "; expected >= 1");
  CheckOptionalSpan("RmsNormBackward", "dx", dx, n * dim);
  CheckOptionalSpan("RmsNormBackward", "dweight", dweight, dim);
  CheckSpan("RmsNormBackward", "dy", dy, n * dim);
  CheckSpan("RmsNormBackward", "x", x, n * dim);
  CheckSpan("RmsNormBackward", "weight", weight, dim);
  CheckSpan("RmsNormBackward", "rstd", rstd, n);
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  std::vector<T> partial(dweight.empty() ? 0 : static_cast<size_t>(chunks * dim));  // [chunks, dim]
  ParallelRanges(pool, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk)
      for (int64_t t = chunk * kRowChunk; t < std::min(n, (chunk + 1) * kRowChunk); ++t)
        BackwardRow(dx, partial.empty() ? nullptr : partial.data() + chunk * dim, dy, x, weight,
                    rstd, t, dim, accumulate_dx);
  });
  for (int64_t chunk = 0; chunk < static_cast<int64_t>(partial.size()) / dim; ++chunk)
    for (int64_t i = 0; i < dim; ++i) dweight[i] += partial[chunk * dim + i];
}
#define WHALE_INSTANTIATE_NORM(T)                                                              \
  template void RmsNormForward<T>(std::span<T>, std::span<T>, std::span<const T>,              \
                                  std::span<const T>, int64_t, int64_t, double, ThreadPool*);  \
  template void RmsNormBackward<T>(std::span<T>, std::span<T>, std::span<const T>,             \
                                   std::span<const T>, std::span<const T>, std::span<const T>, \
                                   int64_t, int64_t, bool, ThreadPool*);
WHALE_INSTANTIATE_NORM(float)
WHALE_INSTANTIATE_NORM(double)
#undef WHALE_INSTANTIATE_NORM

}  // namespace whale
