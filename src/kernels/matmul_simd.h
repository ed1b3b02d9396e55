// The dispatched inner kernels of MatMul (kernels/matmul.h); matmul.cc owns validation and
// threading, matmul_simd.cc the per-target code.
#pragma once

#include <cstdint>

#include "kernels/matmul.h"

namespace whale {

// Rows per parallel task: 16 floats of y per token, so no two threads write one cache line, and
// small enough that a task's weights (16 rows) stay in L2 while all token panels pass over them.
inline constexpr int64_t kMatMulRowsPerTask = 16;

// y[t, i] for every token t < n and row i in [row_begin, row_end) (y is [n, w.rows], x is
// [n, w.cols]); w is F32, BF16 or F8_E4M3 and already validated. row_begin must be a multiple of
// kMatMulRowsPerTask so that results do not depend on how rows are split across threads.
void MatMulRowsSimd(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end);

// dst[row_end - row_begin, w.cols] = those rows of w in F32, with the same values as
// DequantizeRows (FP8: code · block scale, rounded once; NaN codes give NaN), decoded with SIMD.
void DecodeRowsSimd(float* dst, const WeightMatrix& w, int64_t row_begin, int64_t row_end);

}  // namespace whale
