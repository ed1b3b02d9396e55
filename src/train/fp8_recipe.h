// FP8 training recipe emulation (spec training.md 4): every input of a linear layer's three
// products is quantized to e4m3 and dequantized back to F32 before an F32 GEMM.
//   activations and output gradients as the left operand: 1×128 tiles along the inner dimension
//   weights: 128×128 blocks
//   for dW (inner dimension = tokens): activations and output gradients in 128×1 tiles along the
//   token dimension
// Each tile's scale is amax / 448 (kF8E4M3Max); an all-zero tile stays zero. The e4m3 rounding
// is tensor/dtype.h's (bit-exact with PyTorch: round to nearest even, saturating at ±448).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "util/thread_pool.h"

namespace whale {

enum class LinearPrecision { kF32, kFp8 };

// Tile size of the recipe along each tiled dimension.
inline constexpr int64_t kFp8Tile = 128;

// out[rows, cols] = x quantized per tile of tile_rows × tile_cols (edge tiles smaller) to e4m3
// and back: per tile scale = amax / 448 (F32), out = fp32(e4m3(x / scale)) · scale. x / scale
// never exceeds 448·(1 + 2⁻²³), which rounds to 448: no clamping is needed. A tile whose amax
// is 0 stays 0; a tile holding inf or NaN comes out all NaN (payloads unspecified).
// The recipe uses (1, 128), (128, 1) and (128, 128). out may be x (in place). Rounds with
// integer bit operations that vectorize; threaded over tile rows when a pool is given.
void Fp8QuantizeDequantize(std::span<float> out, std::span<const float> x, int64_t rows,
                           int64_t cols, int64_t tile_rows, int64_t tile_cols,
                           ThreadPool* pool = nullptr);

// The reference: the same scale, each element through tensor/dtype.h's F32ToF8E4M3 and
// F8E4M3ToF32 (bit-exact with PyTorch's float8_e4m3fn cast). Fp8QuantizeDequantize equals it
// bit for bit (NaN payloads aside).
void Fp8QuantizeDequantizeRef(std::span<float> out, std::span<const float> x, int64_t rows,
                              int64_t cols, int64_t tile_rows, int64_t tile_cols);

// Scratch for the quantized copies; grown on demand and reused across calls (one per thread of
// the trainer, not shared between concurrent calls).
struct LinearWorkspace {
  std::vector<float> lhs, rhs;
};

// y[n, out] = x[n, in] · w[out, in]ᵀ. kF32: ops_linear.h LinearForward<float>; kFp8: x tiled
// 1×128 (along in), w 128×128.
void LinearForward(LinearPrecision precision, std::span<float> y, std::span<const float> x,
                   std::span<const float> w, int64_t n, int64_t in, int64_t out,
                   LinearWorkspace& workspace, ThreadPool* pool);

// As ops_linear.h LinearBackward<float> (dx `=` or `+=` per accumulate_dx, dw `+=`, either may be
// empty). kFp8: dx = Q1×128(dy) · Q128×128(w) (dy tiled along out); dw += Q128×1(dy)ᵀ · Q128×1(x)
// (both tiled along the tokens). The F32 master weight and the gradients are never quantized.
void LinearBackward(LinearPrecision precision, std::span<float> dx, std::span<float> dw,
                    std::span<const float> dy, std::span<const float> x, std::span<const float> w,
                    int64_t n, int64_t in, int64_t out, bool accumulate_dx,
                    LinearWorkspace& workspace, ThreadPool* pool);

}  // namespace whale
