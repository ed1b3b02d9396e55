#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/matmul_simd.h"
#include "kernels/quant_matmul.h"

namespace whale {
namespace {

// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 15;

}  // namespace

void MatMul(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
            ThreadPool* pool) {
  ValidateMatMulArgs(y, x, n, w, "MatMul");
  if (w.dtype == DType::I8) return MatMulInt8(y, x, n, w, pool);
  if (w.dtype == DType::U8) return MatMulInt4(y, x, n, w, pool);
  if (n == 0 || w.rows == 0) return;
  const int64_t n_tasks = (w.rows + kMatMulRowsPerTask - 1) / kMatMulRowsPerTask;
  auto run = [&](size_t begin, size_t end, int /*worker*/) {
    const int64_t row_begin = static_cast<int64_t>(begin) * kMatMulRowsPerTask;
    const int64_t row_end = std::min(w.rows, static_cast<int64_t>(end) * kMatMulRowsPerTask);
    MatMulRowsSimd(y.data(), x.data(), n, w, row_begin, row_end);
  };
  if (pool == nullptr || pool->size() == 1 || n * w.rows * w.cols < kMinParallelMacs) {
    run(0, static_cast<size_t>(n_tasks), 0);
    return;
  }
  // At least ~64 KiB of weights per chunk keeps each thread on one long sequential stream.
  const int64_t task_bytes = kMatMulRowsPerTask * w.cols * static_cast<int64_t>(SizeOf(w.dtype));
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(1, task_bytes));
  pool->ParallelFor(static_cast<size_t>(n_tasks), static_cast<size_t>(grain), run);
}

}  // namespace whale
