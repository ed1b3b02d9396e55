#include "train/ops_loss.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "train/ops_check.h"
#include "train/ops_math.h"

namespace whale {
namespace {

// e^x: the vectorizable FastExp in F32, std::exp in double (the reference precision).
template <typename T>
inline T Exp(T x) {
  if constexpr (std::is_same_v<T, float>)
    return FastExp(x);
  else
    return std::exp(x);
}

// max and Σ e^(z − max) over a row: F32 with vectorizable loops (fixed order), double plainly.
template <typename T>
T Max(const T* z, int64_t n) {
  if constexpr (std::is_same_v<T, float>)
    return MaxF32(z, n);
  else
    return *std::max_element(z, z + n);
}

template <typename T>
T SumExp(const T* z, int64_t n, T max) {
  if constexpr (std::is_same_v<T, float>) {
    float chunk[256];
    float sum = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
      const int64_t m = std::min<int64_t>(256, n - j0);
      for (int64_t j = 0; j < m; ++j) chunk[j] = FastExp(z[j0 + j] - max);
      sum += SumF32(chunk, m);
    }
    return sum;
  } else {
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(z[j] - max);
    return sum;
  }
}

}  // namespace

template <typename T>
CrossEntropyResult CrossEntropy(std::span<T> dlogits, std::span<const T> logits,
                                std::span<const int32_t> targets, int64_t n, int64_t vocab,
                                double grad_scale, ThreadPool* pool,
                                std::span<const float> row_weights) {
  CheckNonNegative("CrossEntropy", "n", n);
  if (vocab < 1) Fail("CrossEntropy: vocab = ", vocab, "; expected >= 1");
  CheckOptionalSpan("CrossEntropy", "dlogits", dlogits, n * vocab);
  CheckSpan("CrossEntropy", "logits", logits, n * vocab);
  CheckSpan("CrossEntropy", "targets", targets, n);
  CheckOptionalSpan("CrossEntropy", "row_weights", row_weights, n);
  const bool weighted = !row_weights.empty();
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] < -1 || targets[i] >= vocab)
      Fail("CrossEntropy: target ", targets[i], " at row ", i, " is outside [0, ", vocab,
           ") and not -1 (ignored)");
    if (weighted && !std::isfinite(row_weights[i]))
      Fail("CrossEntropy: row weight ", row_weights[i], " at row ", i, " is not finite");
    if (weighted && targets[i] < 0 && row_weights[i] != 0)
      Fail("CrossEntropy: row ", i, " is ignored (target -1) but has weight ", row_weights[i]);
    counted += targets[i] >= 0;
  }
  CrossEntropyResult result;
  result.n_counted = counted;
  if (n == 0) return result;
  const double mean_scale = counted == 0 ? 0.0 : grad_scale / static_cast<double>(counted);
  // Per-row losses, summed afterwards in row order so the result does not depend on threads.
  std::vector<double> row_loss(static_cast<size_t>(n));
  auto rows = [&](size_t begin, size_t end, int) {
    for (size_t row = begin; row < end; ++row) {
      const int64_t i = static_cast<int64_t>(row);
      const T* z = logits.data() + i * vocab;
      const T max = Max(z, vocab);
      const T lse = max + std::log(SumExp(z, vocab, max));
      const int32_t target = targets[i];
      const double w = weighted ? static_cast<double>(row_weights[i]) : 1.0;
      row_loss[row] = target >= 0 ? w * static_cast<double>(lse - z[target]) : 0.0;
      if (dlogits.empty()) continue;
      const T row_scale = static_cast<T>(weighted ? grad_scale * w : mean_scale);
      T* d = dlogits.data() + i * vocab;  // may be z itself: each element read before written
      if (target < 0) {
        std::fill(d, d + vocab, T{0});
        continue;
      }
      for (int64_t j = 0; j < vocab; ++j) d[j] = Exp(z[j] - lse) * row_scale;
      d[target] -= row_scale;
    }
  };
  if (pool == nullptr || pool->size() == 1)
    rows(0, static_cast<size_t>(n), 0);
  else
    pool->ParallelFor(static_cast<size_t>(n), 1, rows);
  double total = 0;
  for (double l : row_loss) total += l;
  result.loss = weighted ? total : counted == 0 ? 0.0 : total / static_cast<double>(counted);
  return result;
}

template CrossEntropyResult CrossEntropy<float>(std::span<float>, std::span<const float>,
                                                std::span<const int32_t>, int64_t, int64_t, double,
                                                ThreadPool*, std::span<const float>);
template CrossEntropyResult CrossEntropy<double>(std::span<double>, std::span<const double>,
                                                 std::span<const int32_t>, int64_t, int64_t, double,
                                                 ThreadPool*, std::span<const float>);

}  // namespace whale
