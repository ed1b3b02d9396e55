// Matrix products against stored weights: y = x · Wᵀ with W in F32, BF16 or block-scaled FP8.
//
// Weights stay in their stored type; the fast kernel decodes small tiles on the fly. Activations
// are F32, row-major (the last index is fastest).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "tensor/dtype.h"
#include "util/thread_pool.h"

namespace whale {

// A [rows = out_features, cols = in_features] weight, as stored in a checkpoint: y = x · Wᵀ.
struct WeightMatrix {
  // F32, BF16, F8_E4M3, or whale's block formats (kernels/quant.h): I8 = int8 codes, U8 = int4
  // codes two per byte, both in groups of 32 consecutive columns with one F16 scale per group.
  DType dtype;
  // F32/BF16/F8_E4M3: row-major, rows * cols elements. I8 / U8: whale's block formats, codes and
  // F16 group scales together in blocks of 8 interleaved rows (kernels/quant.h, STORAGE).
  const void* data;
  int64_t rows, cols;
  // F8_E4M3 only: [ceil(rows / 128), ceil(cols / 128)] F32 multipliers (the checkpoint's
  // weight_scale_inv): W[i, j] = fp8(Wq[i, j]) * S[i / 128, j / 128], edge blocks included.
  const float* block_scales = nullptr;
  // F8_E4M3 only: true promises that no element is one of the NaN codes 0x7F / 0xFF (the loader
  // checks with Fp8HasNanCode). The one-token kernel and the tiles then skip the running check
  // that makes a NaN code give NaN, which cost the one-token kernel a quarter of its time.
  bool fp8_nan_free = false;
};

// True when some byte of codes is an FP8 e4m3 NaN code (0x7F or 0xFF).
bool Fp8HasNanCode(std::span<const uint8_t> codes);

// Edge of the square FP8 scale blocks (spec 3.3).
inline constexpr int64_t kWeightScaleBlock = 128;

// Throws whale::Error unless w has a supported dtype, non-negative dims, data, and block scales
// exactly when it is F8_E4M3. Messages start with `context`.
void ValidateWeightMatrix(const WeightMatrix& w, std::string_view context);
// ValidateWeightMatrix, then n >= 0, x.size() == n * cols and y.size() == n * rows.
void ValidateMatMulArgs(std::span<float> y, std::span<const float> x, int64_t n,
                        const WeightMatrix& w, std::string_view context);

// y[n, rows] = x[n, cols] · Wᵀ. pool may be nullptr (single thread).
// Work is split across the pool by output rows; every weight row is decoded from memory once per
// call whatever n is. Below 256 tokens (FP8: 48) the weights are decoded in registers: one token
// runs row dots, several run tiles of rows x tokens (FP8 for both against x multiplied by each
// 128-column block's scale); from there on, blocks of rows are decoded to F32 (FP8: value times
// scale, rounded once, as DequantizeRows) and multiplied by the packed GEMM of
// kernels/gemm.h. Results do not depend on the thread count, but may differ by rounding between
// machines and compilers. Products and sums are F32 except one token through BF16 weights on
// AVX-512 CPUs with AVX512_BF16, which splits x into two BF16 halves and errs by up to 2^-16
// Σ|x·w| more (kernels/bf16_pairs-inl.h; kernels/simd.h Bf16PairsActive). y must not overlap
// x. Throws whale::Error on an unsupported dtype, missing or stray block scales, or spans whose
// sizes are not exactly n * cols (x) and n * rows (y).
void MatMul(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
            ThreadPool* pool);

// The reference: each weight element dequantized exactly as DequantizeRows does, products and
// sums in double, one rounding to F32 at the end.
void MatMulRef(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w);

// out[row_end - row_begin, cols] = rows [row_begin, row_end) of W in F32. BF16 and FP8 codes are
// exact in F32; an FP8 element is then multiplied by its block scale in F32 (one rounding, as
// DeepSeek's weight_dequant kernel does). For tests and for small absorbed-attention weights.
void DequantizeRows(std::span<float> out, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end);

// y[n, cols] = x[n, row_end - row_begin] · W[row_begin:row_end, :]: rows of W themselves, not
// transposed as in MatMul (absorbed attention multiplies q_nope by W_UK^h straight from a head's
// rows of kv_b, with no transposed copy). Any dtype MatMul takes, any row range; one thread. x is
// used as given, not quantized or rounded: row i's coefficient x[t, i] (times its 128-column
// block scale for FP8, its group scale for int8 / int4) is rounded once, and each decoded weight
// times it is summed in F32 over the rows. FP8 NaN codes give NaN. Throws whale::Error on an
// unsupported dtype, a range outside [0, rows), or spans other than x = n * (row_end -
// row_begin) and y = n * cols.
void MatMulUntransposed(std::span<float> y, std::span<const float> x, int64_t n,
                        const WeightMatrix& w, int64_t row_begin, int64_t row_end);
// ValidateWeightMatrix, then 0 <= row_begin <= row_end <= rows, n >= 0,
// x.size() == n * (row_end - row_begin) and y.size() == n * cols.
void ValidateUntransposedArgs(std::span<float> y, std::span<const float> x, int64_t n,
                              const WeightMatrix& w, int64_t row_begin, int64_t row_end,
                              std::string_view context);
// Its reference: the rows dequantized as DequantizeRows does, products and sums in double, one
// rounding to F32 at the end.
void MatMulUntransposedRef(std::span<float> y, std::span<const float> x, int64_t n,
                           const WeightMatrix& w, int64_t row_begin, int64_t row_end);

// Rows [begin, end) of w as a matrix of their own, sharing w's memory. False (out untouched)
// when they cannot be viewed: FP8 needs begin to be a multiple of kWeightScaleBlock (its scale
// blocks are shared by 128 rows), int8 / int4 a multiple of kQuantRowBlock (rows are stored
// interleaved in blocks of 8); other layouts view any range. Throws on a bad range.
bool ViewRows(const WeightMatrix& w, int64_t begin, int64_t end, WeightMatrix* out);

}  // namespace whale
