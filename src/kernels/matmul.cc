#include "kernels/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"

#include "kernels/matmul_simd.h"
#include "kernels/quant_matmul.h"

namespace whale {
namespace {

// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 15;

// From this many tokens on, a product runs as the packed F32 GEMM (kernels/gemm.h) over weight
// rows decoded once per call. Below it, the register tiles of matmul_simd.cc (4 rows x 4 tokens,
// weights decoded in registers and shared by the tile's tokens) run near the FMA peak without a
// decoded copy; FP8's decode costs more per vector, so there the GEMM's one decode per
// call wins earlier. Measured on one Zen 4 core (bench/kernels BM_MatMul, GFLOP/s, tiles vs
// GEMM): 256 x 256 and 768 x 256 at 16 tokens BF16 76-77 vs 30-39 (FP8 GEMM 32-37), F32 57-67
// vs 42-45; 2048 x 2048 at 128 tokens BF16 84-92 vs 71-78, F32 62-76 vs 59-63; at 512 tokens
// BF16 88.6 vs 87.5, F32 74 vs 83. FP8's tiles (x times the block scales, NaN check skipped
// after the loader's scan) at 16 tokens 67-83, at 64 69-76 vs the GEMM's 70-72, at 128 67-71
// vs 82 and at 512 69 vs 88.
int64_t MinGemmTokens(DType dtype) {
  return dtype == DType::F8_E4M3 ? 48 : 256;
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

bool Fp8HasNanCode(std::span<const uint8_t> codes) {
  // Eight codes per step: a byte's low 7 bits plus one carry into its top bit exactly when they
  // are all set, and the carry stays in the byte.
  constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7Full, kOnes = 0x0101010101010101ull;
  uint64_t carries = 0;
  size_t i = 0;
  for (; i + 8 <= codes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, codes.data() + i, 8);
    carries |= (word & kLow7) + kOnes;
  }
  if ((carries & ~kLow7) != 0) return true;
  for (; i < codes.size(); ++i)
    if ((codes[i] & 0x7F) == 0x7F) return true;
  return false;
}

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
  // At least ~64 KiB of weights per chunk keeps each thread on one long sequential stream; with
  // several tokens a chunk holds that much work in fewer rows, so that small matrices (a decode
  // step of a few sequences through a 256-wide model) still split evenly across the threads. One
  // token claims half a thread's share at a time: BF16 reads a claim's rows as four streams
  // (matmul_simd.cc, ForSpreadRowGroups), which stay long so.
  const int64_t task_bytes = kMatMulRowsPerTask * w.cols * static_cast<int64_t>(SizeOf(w.dtype));
  const int64_t grain =
      n == 1 ? std::max<int64_t>(1, n_tasks / (2 * static_cast<int64_t>(pool->size())))
             : std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(1, task_bytes * n));
  pool->ParallelFor(static_cast<size_t>(n_tasks), static_cast<size_t>(grain), run);
}

}  // namespace whale
