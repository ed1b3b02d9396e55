// whale's int8 and int4 block formats for linear weights, and the int8 activation format the
// quantized matrix products use. Scalar reference code; the fast products are in quant_matmul.h.
//
// FORMAT (a [rows, cols] weight W, y = x · Wᵀ; "group" = 32 consecutive columns of one row):
//
//   groups    = ceil(cols / 32); the last group of a row is padded with zero codes, so a row's
//               codes always cover groups * 32 columns (padding dequantizes to exactly 0).
//   codes     = int8: signed code q, W = q · scale. Symmetric: scale >= amax / 127 (the F16
//               rounding of amax / 127, bumped up one ulp if it rounded down), q = round(w /
//               scale) in [-127, 127]; |error| <= scale / 2. (≈ 8.5 bits per weight.) The
//               kernels are also exact for the code -128.
//               int4: code c in [0, 15], W = (c - 8) · scale. A row's group is 16 bytes: byte i
//               holds element i in its low nibble and element i + 16 in its high nibble.
//               scale = m / -8 where m is the group's element of largest magnitude (so m itself
//               maps to the code 0 exactly; scale may be negative), in F16, magnitude bumped up
//               one ulp if it rounded down; c = clamp(round(w / scale), -8, 7) + 8. |error| <=
//               |scale| / 2, except elements clamped from +8 to +7: <= |scale|. (≈ 4.5 bits.)
//   scale     = one IEEE F16 per (row, group).
//   Rounding is to nearest, ties to even. Non-finite weights, and scales beyond F16's range,
//   are errors.
//
// STORAGE ("rows8": rows interleaved in blocks of 8, so that each 32-bit SIMD lane holds one
// row and 8 rows are multiplied at once without horizontal sums; codes and scales in one
// sequential stream, because a second stream for the scales cost a quarter of the bandwidth):
//   blocks    = ceil(rows / 8); rows of the last block past `rows` are padding (codes 0, scales
//               0: they dequantize to 0 and their outputs are never written).
//   tensor    = `<name>.weight`, I8 (int8) or U8 (int4) [blocks, block_bytes]. A row block holds
//               its groups in quads of 4 (the last quad may hold fewer): each quad is 64 bytes of
//               scales, F16 [4 groups][8 rows] little-endian (entries past the last group 0),
//               then the codes of its groups, 256 (int8) or 128 (int4) bytes per group.
//               block_bytes = ceil(groups / 4) * 64 + groups * (256 | 128).
//   int8 group: 8 chunks of 32 bytes; chunk k holds row r's codes of columns 4k..4k+3 at bytes
//               4r..4r+3.
//   int4 group: 4 chunks of 32 bytes; chunk k holds row r's group bytes 4k..4k+3 at 4r..4r+3 (so
//               the low nibbles are columns 4k..4k+3 and the high ones 16+4k..16+4k+3).
//   config.json: "quantization_config": {"quant_method": "whale", "format": "int8" | "int4",
//   "group_size": 32, "layout": "rows8"}. Quantized: every linear projection (attention
//   q/q_a/q_b/kv_a/kv_b/o, dense / shared / routed expert gate/up/down, the MTP eh_proj). Kept as
//   stored: embeddings, lm_head (and MTP's shared head; the output head's accuracy matters most
//   for sampling), norms, the router gate and e_score_correction_bias.
//
// ACTIVATIONS (computed on the fly, never stored): each row of x is cut into the same groups; per
// group d = amax / 127 (F32), q = clamp(nearbyint(x · (127 / amax)), -127, 127) (0 when amax is
// 0), plus the group's code sum (for int4's offset). The padding past cols is zero.
#pragma once

#include <cstdint>
#include <span>

namespace whale {

inline constexpr int64_t kQuantGroup = 32;
inline constexpr int64_t kQuantRowBlock = 8;  // rows interleaved together (STORAGE above)

enum class QuantFormat { kInt8, kInt4 };

inline int64_t QuantGroups(int64_t cols) {
  return (cols + kQuantGroup - 1) / kQuantGroup;
}
inline int64_t QuantRowBlocks(int64_t rows) {
  return (rows + kQuantRowBlock - 1) / kQuantRowBlock;
}
inline constexpr int64_t kQuantQuad = 4;  // groups whose scales share 64 bytes
inline constexpr int64_t kQuantQuadScaleBytes = 64;
// Code bytes of one (row block, group): 256 (int8) or 128 (int4).
inline int64_t QuantGroupBytes(QuantFormat format) {
  return kQuantRowBlock * (format == QuantFormat::kInt8 ? kQuantGroup : kQuantGroup / 2);
}
// Stored bytes of one row block, and of a whole [rows, cols] weight.
inline int64_t QuantBlockBytes(QuantFormat format, int64_t cols) {
  const int64_t groups = QuantGroups(cols);
  return (groups + kQuantQuad - 1) / kQuantQuad * kQuantQuadScaleBytes +
         groups * QuantGroupBytes(format);
}
inline int64_t QuantStoredBytes(QuantFormat format, int64_t rows, int64_t cols) {
  return QuantRowBlocks(rows) * QuantBlockBytes(format, cols);
}
// Byte offset, within its row block, of group g's quad scales (its 8 F16 scales start at
// + (g % 4) * 16) and of group g's codes.
inline int64_t QuantQuadOffset(QuantFormat format, int64_t g) {
  return (g / kQuantQuad) * (kQuantQuadScaleBytes + kQuantQuad * QuantGroupBytes(format));
}
inline int64_t QuantGroupCodeOffset(QuantFormat format, int64_t g) {
  return QuantQuadOffset(format, g) + kQuantQuadScaleBytes +
         (g % kQuantQuad) * QuantGroupBytes(format);
}
// Byte offsets in the stored tensor of the code of (row, col) (int4: *high says which nibble)
// and of the F16 scale of (row, group).
int64_t QuantCodeIndex(QuantFormat format, int64_t cols, int64_t row, int64_t col, bool* high);
int64_t QuantScaleIndex(QuantFormat format, int64_t cols, int64_t row, int64_t group);
const char* QuantFormatName(QuantFormat format);  // "int8" / "int4"

// stored[QuantStoredBytes], as above, from w[rows, cols] (F32). Throws whale::Error naming the
// row and column of a non-finite weight. A matrix may be quantized in parts of whole row blocks:
// rows [8b, 8b + n) go to the bytes from b * QuantBlockBytes.
void QuantizeRows(QuantFormat format, std::span<uint8_t> stored, std::span<const float> w,
                  int64_t rows, int64_t cols);

// out[row_end - row_begin, cols] = the exact F32 values of rows [row_begin, row_end) of a stored
// weight (the whole matrix's bytes, as above).
void DequantizeCodes(QuantFormat format, std::span<float> out, const uint8_t* stored, int64_t cols,
                     int64_t row_begin, int64_t row_end);

// One activation row quantized as described above: q[groups * 32] codes, d[groups] scales,
// sum[groups] code sums. x has cols elements. The reference and the fast kernels share it, so
// fast vs reference differences come from the products alone.
void QuantizeActivationRow(int8_t* q, float* d, int32_t* sum, const float* x, int64_t cols);

}  // namespace whale
