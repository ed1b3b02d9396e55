// Training ops: RMSNorm forward and backward (conventions in ops_linear.h).
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

// y[n, dim] = x · r · weight with r = 1 / sqrt(Σx² / dim + eps) per row; rstd[n] = r is saved for
// the backward. float: the inference kernel kernels/norm.h RmsNorm computes y (same rounding as
// the model); double: plain loops. y may not alias x (the backward needs x).
template <typename T>
void RmsNormForward(std::span<T> y, std::span<T> rstd, std::span<const T> x,
                    std::span<const T> weight, int64_t n, int64_t dim, double eps,
                    ThreadPool* pool = nullptr);

// dx[n, dim] = (or += when accumulate_dx) r·(w ⊙ dy) − x · r³ · Σ(w ⊙ dy ⊙ x) / dim
// dweight[dim] += Σ_rows dy ⊙ x · r, summed per chunk of 64 rows, then the chunks in order.
// Both threaded over rows on the pool (may be null); results do not depend on the thread count.
template <typename T>
void RmsNormBackward(std::span<T> dx, std::span<T> dweight, std::span<const T> dy,
                     std::span<const T> x, std::span<const T> weight, std::span<const T> rstd,
                     int64_t n, int64_t dim, bool accumulate_dx, ThreadPool* pool = nullptr);

}  // namespace whale
