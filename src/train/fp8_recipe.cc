#include "train/fp8_recipe.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/gemm.h"
#include "tensor/dtype.h"
#include "train/ops_check.h"
#include "train/ops_linear.h"

namespace whale {
namespace {

void CheckTiles(std::string_view op, std::span<float> out, std::span<const float> x, int64_t rows,
                int64_t cols, int64_t tile_rows, int64_t tile_cols) {
  CheckNonNegative(op, "rows", rows);
  CheckNonNegative(op, "cols", cols);
  if (tile_rows < 1 || tile_cols < 1)
    Fail(op, ": tile ", tile_rows, " x ", tile_cols, "; expected positive sizes");
  CheckSpan(op, "out", out, rows * cols);
  CheckSpan(op, "x", x, rows * cols);
}

// max |x| over a tile as the maximum of the magnitudes' bit patterns: integer maxima vectorize
// (float ones do not without -ffast-math), the order of non-negative floats is that of their
// bits, and a NaN (bits above +inf) wins as it should.
float TileAmax(std::span<const float> x, int64_t cols, int64_t r0, int64_t r1, int64_t c0,
               int64_t c1) {
  uint32_t amax = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x.data() + r * cols;
    for (int64_t c = c0; c < c1; ++c)
      amax = std::max(amax, std::bit_cast<uint32_t>(src[c]) & 0x7FFFFFFFu);
  }
  return std::bit_cast<float>(amax);
}

inline float RoundToE4m3(float v) {
  const float a = std::fabs(v);
  // a·512 < 8 here: adding and subtracting 2²³ rounds it to an integer, ties to even.
  const float subnormal = ((a * 512.0f + 0x1p23f) - 0x1p23f) * (1.0f / 512.0f);
  uint32_t bits = std::bit_cast<uint32_t>(a);
  bits = (bits + 0x7FFFFu + ((bits >> 20) & 1u)) & 0xFFF00000u;
  const float normal = std::bit_cast<float>(bits);
  return std::copysign(a < 0x1p-6f ? subnormal : normal, v);
}

void QuantizeTile(std::span<float> out, std::span<const float> x, int64_t cols, int64_t r0,
                  int64_t r1, int64_t c0, int64_t c1, bool reference) {
  const float amax = TileAmax(x, cols, r0, r1, c0, c1);
  if (amax == 0.0f) {
    for (int64_t r = r0; r < r1; ++r) std::fill(&out[r * cols + c0], &out[r * cols + c1], 0.0f);
    return;
  }
  const float scale = amax / kF8E4M3Max;
  if (reference || !std::isfinite(amax)) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c)
        out[r * cols + c] = F8E4M3ToF32(F32ToF8E4M3(x[r * cols + c] / scale)) * scale;
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x.data() + r * cols;
    float* dst = out.data() + r * cols;
    for (int64_t c = c0; c < c1; ++c) dst[c] = RoundToE4m3(src[c] / scale) * scale;
  }
}

// Tiles of tile_rows × 1 (the tokens-major tiles of the dW product): all columns of a block of
// rows at once, so that every inner loop runs along a contiguous row. bits and scales are
// [cols] scratch.
void QuantizeColumnTiles(std::span<float> out, std::span<const float> x, int64_t cols, int64_t r0,
                         int64_t r1, std::vector<uint32_t>& bits, std::vector<float>& scales) {
  // Running maxima of the magnitudes' bit patterns (see TileAmax).
  bits.assign(static_cast<size_t>(cols), 0u);
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c)
      bits[c] = std::max(bits[c], std::bit_cast<uint32_t>(src[c]) & 0x7FFFFFFFu);
  }
  scales.resize(static_cast<size_t>(cols));
  bool all_finite = true;
  for (int64_t c = 0; c < cols; ++c) {
    const float amax = std::bit_cast<float>(bits[c]);
    all_finite = all_finite && std::isfinite(amax);
    scales[c] = amax / kF8E4M3Max;  // 0 for an all-zero tile
  }
  if (!all_finite) {  // rare: let the per-tile path apply the reference conversion
    for (int64_t c = 0; c < cols; ++c) QuantizeTile(out, x, cols, r0, r1, c, c + 1, false);
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const float* src = x.data() + r * cols;
    float* dst = out.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c)
      dst[c] = scales[c] == 0.0f ? 0.0f : RoundToE4m3(src[c] / scales[c]) * scales[c];
  }
}

void QuantizeAll(std::span<float> out, std::span<const float> x, int64_t rows, int64_t cols,
                 int64_t tile_rows, int64_t tile_cols, bool reference, ThreadPool* pool) {
  const int64_t row_tiles = (rows + tile_rows - 1) / tile_rows;
  auto body = [&](size_t begin, size_t end, int) {
    thread_local std::vector<uint32_t> bits;
    thread_local std::vector<float> scales;
    for (size_t tr = begin; tr < end; ++tr) {
      const int64_t r0 = static_cast<int64_t>(tr) * tile_rows;
      const int64_t r1 = std::min(rows, r0 + tile_rows);
      if (tile_cols == 1 && !reference) {
        QuantizeColumnTiles(out, x, cols, r0, r1, bits, scales);
        continue;
      }
      for (int64_t c0 = 0; c0 < cols; c0 += tile_cols)
        QuantizeTile(out, x, cols, r0, r1, c0, std::min(cols, c0 + tile_cols), reference);
    }
  };
  if (pool == nullptr || pool->size() == 1 || row_tiles < 2 || rows * cols < (int64_t{1} << 15))
    body(0, static_cast<size_t>(row_tiles), 0);
  else
    pool->ParallelFor(static_cast<size_t>(row_tiles), 1, body);
}

std::span<float> Resize(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<size_t>(size));
  return std::span<float>(buffer.data(), static_cast<size_t>(size));
}

}  // namespace

void Fp8QuantizeDequantize(std::span<float> out, std::span<const float> x, int64_t rows,
                           int64_t cols, int64_t tile_rows, int64_t tile_cols, ThreadPool* pool) {
  CheckTiles("Fp8QuantizeDequantize", out, x, rows, cols, tile_rows, tile_cols);
  QuantizeAll(out, x, rows, cols, tile_rows, tile_cols, false, pool);
}

void Fp8QuantizeDequantizeRef(std::span<float> out, std::span<const float> x, int64_t rows,
                              int64_t cols, int64_t tile_rows, int64_t tile_cols) {
  CheckTiles("Fp8QuantizeDequantizeRef", out, x, rows, cols, tile_rows, tile_cols);
  QuantizeAll(out, x, rows, cols, tile_rows, tile_cols, true, nullptr);
}

void LinearForward(LinearPrecision precision, std::span<float> y, std::span<const float> x,
                   std::span<const float> w, int64_t n, int64_t in, int64_t out,
                   LinearWorkspace& workspace, ThreadPool* pool) {
  if (precision == LinearPrecision::kF32) {
    LinearForward<float>(y, x, w, n, in, out, pool);
    return;
  }
  CheckNonNegative("LinearForward(fp8)", "n", n);
  CheckNonNegative("LinearForward(fp8)", "in", in);
  CheckNonNegative("LinearForward(fp8)", "out", out);
  CheckSpan("LinearForward(fp8)", "x", x, n * in);
  CheckSpan("LinearForward(fp8)", "w", w, out * in);
  const std::span<float> qx = Resize(workspace.lhs, n * in);    // [n, in]
  const std::span<float> qw = Resize(workspace.rhs, out * in);  // [out, in]
  Fp8QuantizeDequantize(qx, x, n, in, 1, kFp8Tile, pool);
  Fp8QuantizeDequantize(qw, w, out, in, kFp8Tile, kFp8Tile, pool);
  LinearForward<float>(y, qx, qw, n, in, out, pool);
}

void LinearBackward(LinearPrecision precision, std::span<float> dx, std::span<float> dw,
                    std::span<const float> dy, std::span<const float> x, std::span<const float> w,
                    int64_t n, int64_t in, int64_t out, bool accumulate_dx,
                    LinearWorkspace& workspace, ThreadPool* pool) {
  if (precision == LinearPrecision::kF32) {
    LinearBackward<float>(dx, dw, dy, x, w, n, in, out, accumulate_dx, pool);
    return;
  }
  CheckNonNegative("LinearBackward(fp8)", "n", n);
  CheckNonNegative("LinearBackward(fp8)", "in", in);
  CheckNonNegative("LinearBackward(fp8)", "out", out);
  CheckOptionalSpan("LinearBackward(fp8)", "dx", dx, n * in);
  CheckOptionalSpan("LinearBackward(fp8)", "dw", dw, out * in);
  CheckSpan("LinearBackward(fp8)", "dy", dy, n * out);
  CheckSpan("LinearBackward(fp8)", "x", x, n * in);
  CheckSpan("LinearBackward(fp8)", "w", w, out * in);
  if (!dx.empty()) {
    // dx[n, in] = Q1×128(dy)[n, out] · Q128×128(w)[out, in]: dy tiled along out (the inner dim).
    const std::span<float> qdy = Resize(workspace.lhs, n * out);
    const std::span<float> qw = Resize(workspace.rhs, out * in);
    Fp8QuantizeDequantize(qdy, dy, n, out, 1, kFp8Tile, pool);
    Fp8QuantizeDequantize(qw, w, out, in, kFp8Tile, kFp8Tile, pool);
    Gemm(dx, qdy, qw, n, in, out, Trans::kNo, Trans::kNo, accumulate_dx, pool);
  }
  if (!dw.empty()) {
    // dw[out, in] += Q128×1(dy)[n, out]ᵀ · Q128×1(x)[n, in]: both tiled along the tokens.
    const std::span<float> qdy = Resize(workspace.lhs, n * out);
    const std::span<float> qx = Resize(workspace.rhs, n * in);
    Fp8QuantizeDequantize(qdy, dy, n, out, kFp8Tile, 1, pool);
    Fp8QuantizeDequantize(qx, x, n, in, kFp8Tile, 1, pool);
    Gemm(dw, qdy, qx, out, in, n, Trans::kYes, Trans::kNo, true, pool);
  }
}

}  // namespace whale
