#include <cstdint>
#include <span>
#include <vector>

#include "kernels/gemm.h"
#include "util/error.h"

namespace whale {

void GemmRef(std::span<float> c, std::span<const float> a, std::span<const float> b, int64_t m,
             int64_t n, int64_t k, Trans trans_a, Trans trans_b, bool accumulate) {
  if (m < 0 || n < 0 || k < 0) Fail("GemmRef: negative size m=", m, " n=", n, " k=", k);
  if (static_cast<int64_t>(a.size()) != m * k || static_cast<int64_t>(b.size()) != k * n ||
      static_cast<int64_t>(c.size()) != m * n)
    Fail("GemmRef: spans of ", a.size(), ", ", b.size(), " and ", c.size(),
         " floats; expected m*k=", m * k, ", k*n=", k * n, " and m*n=", m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = accumulate ? c[i * n + j] : 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = trans_a == Trans::kYes ? a[p * m + i] : a[i * k + p];
        const double y = trans_b == Trans::kYes ? b[j * k + p] : b[p * n + j];
        sum += x * y;
      }
      c[i * n + j] = static_cast<float>(sum);
    }
}

}  // namespace whale
