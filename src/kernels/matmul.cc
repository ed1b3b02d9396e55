#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

#include "kernels/matmul_simd.h"
#include "kernels/quant_matmul.h"

namespace whale {
namespace {

// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 15;

// From this many tokens on, a product runs as the packed F32 GEMM (kernels/gemm.h) over weight
// rows decoded once per call: its register-blocked outer products (no horizontal sums) reach
// 2.3-3.7x the throughput of the row-dot kernels on 128 x 2048 x 2048, and decoding costs 1/n
// per product. Below it, the row tiles (4 tokens x 4 rows) read each weight vector ceil(n / 4)
// times, which costs less than decoding and packing. FP8's decode (scale, NaN check) costs more,
// so it pays later. Measured: BF16 from 8 tokens made small-v3's 128-token prefill (experts see
// ~12 tokens each) 35% faster than from 16; from 9 instead of 8, an 8-sequence decode step (every
// dense product at n = 8) of whale-tiny-r1 runs 10-15% faster (batched / batch-1 decode in the
// same run, 1 thread: 0.80 -> 0.89-0.93). FP8 at 8 left prefill unchanged within noise and made
// 8-sequence decode steps 20% slower than at 16.
int64_t MinGemmTokens(DType dtype) {
  return dtype == DType::F8_E4M3 ? 16 : 9;
}
// Weight rows decoded per task: about 1 MiB of F32 (128 rows of 2048), which measured 40% faster
// than 256 KiB blocks on 2048 x 2048 (fewer, wider Gemm panels per decoded row).
constexpr int64_t kDecodedBlockFloats = int64_t{256} << 10;

// Per-thread scratch that only grows (a resize to each call's size would zero-fill).
float* Scratch(int which, int64_t floats) {
  thread_local std::vector<float> scratch[2];
  std::vector<float>& v = scratch[which];
  if (static_cast<int64_t>(v.size()) < floats) v.resize(static_cast<size_t>(floats));
  return v.data();
}

// y[n, rows] = x[n, cols] · Wᵀ through Gemm: tasks of whole row blocks; each decodes its rows to
// F32 [block, cols], multiplies on its own thread into [n, block] and copies those columns into
// y. Every element is Gemm's sum (k-blocks in ascending order) whatever the tasks, so results do
// not depend on the thread count.
void MatMulViaGemm(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                   ThreadPool* pool) {
  if (w.dtype == DType::F32) {
    Gemm(y, x, std::span<const float>(static_cast<const float*>(w.data), w.rows * w.cols), n,
         w.rows, w.cols, Trans::kNo, Trans::kYes, false, pool);
    return;
  }
  const int64_t block = std::clamp<int64_t>(
      kDecodedBlockFloats / std::max<int64_t>(1, w.cols) / kMatMulRowsPerTask * kMatMulRowsPerTask,
      kMatMulRowsPerTask, 256);
  const int64_t n_tasks = (w.rows + block - 1) / block;
  ParallelRanges(pool, n_tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r0 = task * block, rows = std::min(w.rows, r0 + block) - r0;
      float* decoded = Scratch(0, rows * w.cols);  // [rows, cols]
      float* product = Scratch(1, n * rows);       // [n, rows]
      DecodeRowsSimd(decoded, w, r0, r0 + rows);
      Gemm(std::span<float>(product, n * rows), x, std::span<const float>(decoded, rows * w.cols),
           n, rows, w.cols, Trans::kNo, Trans::kYes, false, nullptr);
      for (int64_t t = 0; t < n; ++t)
        std::copy(product + t * rows, product + (t + 1) * rows, y.data() + t * w.rows + r0);
    }
  });
}

}  // namespace

void MatMul(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
            ThreadPool* pool) {
  ValidateMatMulArgs(y, x, n, w, "MatMul");
  if (w.dtype == DType::I8) return MatMulInt8(y, x, n, w, pool);
  if (w.dtype == DType::U8) return MatMulInt4(y, x, n, w, pool);
  if (n == 0 || w.rows == 0) return;
  if (n >= MinGemmTokens(w.dtype) && w.cols > 0) return MatMulViaGemm(y, x, n, w, pool);
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
