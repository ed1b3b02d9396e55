#include "kernels/matmul.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <type_traits>

namespace whale {
namespace {

// The kernel walks W in tiles of kRowTile rows × a column range (one 128-column scale block for
// FP8, whose block dot is scaled before it joins the sum) and multiplies each tile with a panel of
// up to kTokenPanel tokens, so every weight comes from memory once per call (from L1/L2 for the
// later token panels of a row tile). For one or two tokens the weights are decoded in registers
// inside the dot loop; for more, a tile is decoded to F32 once per panel into a small stack buffer
// and reused by every token of the panel.
constexpr int kRowTile = 4;
constexpr int64_t kTokenPanel = 32;
constexpr int kTokenTile = 2;  // tokens sharing each load of a weight in the innermost loop
constexpr int64_t kMaxTokensDecodedInRegisters = 2;
// Columns of a decoded tile (a multiple of kWeightScaleBlock; scaled weights use one block).
constexpr int64_t kTileCols = 512;
// Rows per parallel task: a multiple of 16 floats of y, so no two threads write one cache line.
constexpr int64_t kRowsPerTask = 16;
// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 16;

// Storage formats: the stored element type and its exact F32 value.
struct F32Format {
  using Storage = float;
  static float Decode(float v) { return v; }
};

struct Bf16Format {
  using Storage = uint16_t;
  static float Decode(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }
};

struct Fp8Format {
  using Storage = uint8_t;
  // Exact, with integer operations that vectorize and without touching an F32 subnormal (which
  // costs a microcode assist per vector on many x86 cores). A normal code (exponent field >= 1)
  // only needs its exponent rebiased from 7 to 127: shift the 7 magnitude bits so that they sit
  // at the bottom of the F32 exponent and the top of its mantissa, and add 120 to the exponent.
  // A subnormal code is m · 2^-9: the integer m converted and scaled, both exact. S.1111.111, the
  // only NaN code, would decode to ±480 without the final select.
  static float Decode(uint8_t v) {
    const uint32_t magnitude = v & 0x7F;
    const float normal = std::bit_cast<float>((magnitude << 20) + (120u << 23));
    const float subnormal = static_cast<float>(static_cast<int32_t>(magnitude)) * 0x1p-9f;
    const float unsigned_value = magnitude < 0x08 ? subnormal : normal;
    const float value = std::bit_cast<float>(std::bit_cast<uint32_t>(unsigned_value) |
                                             (static_cast<uint32_t>(v & 0x80) << 24));
    return magnitude == 0x7F ? std::numeric_limits<float>::quiet_NaN() : value;
  }
};

// partial[t][r] = Σ_{k < len} x[t][k] · decode(w[r][k]) for kTokens tokens and kRowTile rows.
// matmul.cc is compiled with -fassociative-math so that the compiler may split each sum into
// vector lanes: kTokens · kRowTile vector accumulators, each decoded weight used kTokens times.
template <typename Format, int kTokens>
inline void DotRows(float (&partial)[kTokens][kRowTile], const float* const (&x)[kTokens],
                    const typename Format::Storage* const (&w)[kRowTile], int64_t len) {
  float sum[kTokens][kRowTile] = {};
  for (int64_t k = 0; k < len; ++k) {
    float wk[kRowTile];
    for (int r = 0; r < kRowTile; ++r) wk[r] = Format::Decode(w[r][k]);
    for (int t = 0; t < kTokens; ++t)
      for (int r = 0; r < kRowTile; ++r) sum[t][r] += x[t][k] * wk[r];
  }
  for (int t = 0; t < kTokens; ++t)
    for (int r = 0; r < kRowTile; ++r) partial[t][r] = sum[t][r];
}

// acc[t][r] += (x_t · w_r over one column block) · scale[r] for the n_tokens tokens of a panel;
// x points at the block's first column of the panel's first token.
template <typename Format>
void AccumulatePanel(float (*acc)[kRowTile], const float* x, int64_t x_stride, int64_t n_tokens,
                     const typename Format::Storage* const (&w)[kRowTile], int64_t len,
                     const float (&scale)[kRowTile]) {
  int64_t t = 0;
  for (; t + kTokenTile <= n_tokens; t += kTokenTile) {
    const float* const xt[kTokenTile] = {x + t * x_stride, x + (t + 1) * x_stride};
    float partial[kTokenTile][kRowTile];
    DotRows<Format, kTokenTile>(partial, xt, w, len);
    for (int i = 0; i < kTokenTile; ++i)
      for (int r = 0; r < kRowTile; ++r) acc[t + i][r] += partial[i][r] * scale[r];
  }
  for (; t < n_tokens; ++t) {
    const float* const xt[1] = {x + t * x_stride};
    float partial[1][kRowTile];
    DotRows<Format, 1>(partial, xt, w, len);
    for (int r = 0; r < kRowTile; ++r) acc[t][r] += partial[0][r] * scale[r];
  }
}

// y rows [row_begin, row_end) for all n tokens. kScaled: multiply each block's dot by its scale.
template <typename Format, bool kScaled>
void MatMulRows(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
                int64_t row_end) {
  using Storage = typename Format::Storage;
  const int64_t cols = w.cols;
  const int64_t n_scale_cols = (cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  alignas(64) float tile[kRowTile][kTileCols];  // [kRowTile, kTileCols] decoded weights
  const float* const tile_rows[kRowTile] = {tile[0], tile[1], tile[2], tile[3]};
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowTile) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kRowTile, row_end - r0));
    // A short last tile repeats its last row; those results are not stored.
    int64_t row[kRowTile];
    for (int r = 0; r < kRowTile; ++r) row[r] = r0 + std::min(r, n_rows - 1);
    for (int64_t t0 = 0; t0 < n; t0 += kTokenPanel) {
      const int64_t n_tokens = std::min(kTokenPanel, n - t0);
      const bool decode_tile =
          !std::is_same_v<Format, F32Format> && n_tokens > kMaxTokensDecodedInRegisters;
      // Columns per step: one scale block when scaled, else a tile or (in registers) the row.
      const int64_t step = kScaled ? kWeightScaleBlock : decode_tile ? kTileCols : cols;
      float acc[kTokenPanel][kRowTile] = {};  // [n_tokens, kRowTile]
      for (int64_t k0 = 0; k0 < cols; k0 += step) {
        const int64_t len = std::min(step, cols - k0);
        const Storage* src[kRowTile];
        for (int r = 0; r < kRowTile; ++r)
          src[r] = static_cast<const Storage*>(w.data) + row[r] * cols + k0;
        float scale[kRowTile];
        for (int r = 0; r < kRowTile; ++r)
          scale[r] = kScaled ? w.block_scales[(row[r] / kWeightScaleBlock) * n_scale_cols +
                                              k0 / kWeightScaleBlock]
                             : 1.0f;
        const float* xb = x + t0 * cols + k0;
        if (decode_tile) {
          for (int r = 0; r < kRowTile; ++r)
            for (int64_t k = 0; k < len; ++k) tile[r][k] = Format::Decode(src[r][k]);
          AccumulatePanel<F32Format>(acc, xb, cols, n_tokens, tile_rows, len, scale);
        } else {
          AccumulatePanel<Format>(acc, xb, cols, n_tokens, src, len, scale);
        }
      }
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int r = 0; r < n_rows; ++r) y[(t0 + t) * w.rows + r0 + r] = acc[t][r];
    }
  }
}

using RowsKernel = void (*)(float*, const float*, int64_t, const WeightMatrix&, int64_t, int64_t);

}  // namespace

void MatMul(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
            ThreadPool* pool) {
  ValidateMatMulArgs(y, x, n, w, "MatMul");
  if (n == 0 || w.rows == 0) return;
  RowsKernel kernel = nullptr;
  switch (w.dtype) {
    case DType::F32:
      kernel = MatMulRows<F32Format, false>;
      break;
    case DType::BF16:
      kernel = MatMulRows<Bf16Format, false>;
      break;
    default:
      kernel = MatMulRows<Fp8Format, true>;
      break;
  }
  const int64_t n_tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  auto run = [&](size_t begin, size_t end, int /*worker*/) {
    const int64_t row_begin = static_cast<int64_t>(begin) * kRowsPerTask;
    const int64_t row_end = std::min(w.rows, static_cast<int64_t>(end) * kRowsPerTask);
    kernel(y.data(), x.data(), n, w, row_begin, row_end);
  };
  if (pool == nullptr || pool->size() == 1 || n * w.rows * w.cols < kMinParallelMacs) {
    run(0, static_cast<size_t>(n_tasks), 0);
    return;
  }
  // At least ~64 KiB of weights per chunk keeps each thread on one long sequential stream.
  const int64_t task_bytes = kRowsPerTask * w.cols * static_cast<int64_t>(SizeOf(w.dtype));
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(1, task_bytes));
  pool->ParallelFor(static_cast<size_t>(n_tasks), static_cast<size_t>(grain), run);
}

}  // namespace whale
