// Matrix products against whale's int8 / int4 block-quantized weights (formats in kernels/quant.h).
//
// y = x · Wᵀ with W stored as WeightMatrix dtype I8 (int8) or U8 (int4), codes and scales. The
// activations x (F32) are quantized on the fly, once per call, to int8 per group of 32 columns
// (QuantizeActivationRow in kernels/quant.h); each group's dot product is then an exact integer
// sum, scaled by the weight group's F16 scale times the activation group's F32 scale and summed in
// F32. MatMul / MatMulRef / DequantizeRows / ValidateWeightMatrix (kernels/matmul.h) forward here
// for I8 and U8.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "kernels/matmul.h"
#include "util/thread_pool.h"

namespace whale {

// Throws whale::Error (message starting with `context`) unless w.dtype is I8 or U8, dims are
// non-negative, data is present, and block_scales is absent.
void ValidateQuantWeight(const WeightMatrix& w, std::string_view context);

// y[n, rows] = x[n, cols] · Wᵀ for dtype I8 / U8 respectively (fast kernels behind Highway's
// dynamic dispatch). pool may be nullptr (single thread). Activations are quantized into
// thread-local scratch reused across calls. Work is split across the pool by output rows;
// results do not depend on the thread count. Throws whale::Error on a wrong dtype or span sizes
// other than x = n * cols, y = n * rows.
void MatMulInt8(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                ThreadPool* pool);
void MatMulInt4(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                ThreadPool* pool);

// The Highway target the fast kernels dispatch to now, e.g. "AVX2" (for reports and benches).
const char* QuantMatMulTarget();

// The reference for both: every x row quantized exactly as the fast kernels do
// (QuantizeActivationRow), the QUANTIZED activation dequantized exactly (code · scale, in
// double), each weight dequantized as DequantizeRowsQuant does, products and sums in double, one
// rounding to F32 at the end. So fast vs reference differ only by F32 rounding of the scaled
// group sums; the activation quantization error itself is measured separately (quant tests).
void MatMulQuantRef(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w);

// out[row_end - row_begin, cols] = rows [row_begin, row_end) of W in F32: code · F16 scale
// (int4: (code - 8) · scale), exact in F32 (an 8-bit integer times an F16 fits F32's mantissa).
void DequantizeRowsQuant(std::span<float> out, const WeightMatrix& w, int64_t row_begin,
                         int64_t row_end);

}  // namespace whale
