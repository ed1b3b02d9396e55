// whale's int8 and int4 block formats for linear weights, and the int8 activation format the
// quantized matrix products use. Scalar reference code; the fast products are in quant_matmul.h.
//
// FORMAT (a [rows, cols] weight W, y = x · Wᵀ; "group" = 32 consecutive columns of one row):
//
//   groups    = ceil(cols / 32); the last group of a row is padded with zero codes, so a row's
//               codes always cover groups * 32 columns (padding dequantizes to exactly 0).
//   scale     = one IEEE F16 per (row, group): tensor `<name>.weight_scale`, F16 [rows, groups].
//   int8      = tensor `<name>.weight`, I8 [rows, groups * 32]: signed code q, W = q · scale.
//               Symmetric: scale >= amax / 127 (the F16 rounding of amax / 127, bumped up one ulp
//               if it rounded down), q = round(w / scale) in [-127, 127]; |error| <= scale / 2.
//               (≈ 8.5 bits per weight.) The kernels are also exact for the code -128.
//   int4      = tensor `<name>.weight`, U8 [rows, groups * 16]: code c in [0, 15], W = (c - 8) ·
//               scale. Byte i (0 <= i < 16) of a group holds element i in its low nibble and
//               element i + 16 in its high nibble, so one AND and one shift unpack a group into
//               its two halves in order. scale = m / -8 where m is the group's element of largest
//               magnitude (so m itself maps to the code 0 exactly; scale may be negative), in F16,
//               magnitude bumped up one ulp if it rounded down; c = clamp(round(w / scale), -8, 7)
//               + 8. |error| <= |scale| / 2, except elements clamped from +8 to +7: <= |scale|.
//               (≈ 4.5 bits per weight.)
//   Rounding is to nearest, ties to even. Non-finite weights, and scales beyond F16's range,
//   are errors.
//   config.json: "quantization_config": {"quant_method": "whale", "format": "int8" | "int4",
//   "group_size": 32}. Quantized: every linear projection (attention q/q_a/q_b/kv_a/kv_b/o,
//   dense / shared / routed expert gate/up/down, the MTP eh_proj). Kept as stored: embeddings,
//   lm_head (and MTP's shared head; the output head's accuracy matters most for sampling),
//   norms, the router gate and e_score_correction_bias.
//
// ACTIVATIONS (computed on the fly, never stored): each row of x is cut into the same groups; per
// group d = amax / 127 (F32), q = clamp(nearbyint(x · (127 / amax)), -127, 127) (0 when amax is
// 0), plus the group's code sum (for int4's offset). The padding past cols is zero.
#pragma once

#include <cstdint>
#include <span>

namespace whale {

inline constexpr int64_t kQuantGroup = 32;

enum class QuantFormat { kInt8, kInt4 };

inline int64_t QuantGroups(int64_t cols) {
  return (cols + kQuantGroup - 1) / kQuantGroup;
}
// Stored bytes per row: groups * 32 (int8) or groups * 16 (int4).
inline int64_t QuantRowBytes(QuantFormat format, int64_t cols) {
  return QuantGroups(cols) * (format == QuantFormat::kInt8 ? kQuantGroup : kQuantGroup / 2);
}
const char* QuantFormatName(QuantFormat format);  // "int8" / "int4"

// codes[rows, QuantRowBytes] and scales[rows, groups] (F16 bits) from w[rows, cols] (F32).
// Throws whale::Error naming the row and column of a non-finite weight.
void QuantizeRows(QuantFormat format, std::span<uint8_t> codes, std::span<uint16_t> scales,
                  std::span<const float> w, int64_t rows, int64_t cols);

// out[rows, cols] = the exact F32 values of stored rows (codes and scales as above).
void DequantizeCodes(QuantFormat format, std::span<float> out, const uint8_t* codes,
                     const uint16_t* scales, int64_t rows, int64_t cols);

// One activation row quantized as described above: q[groups * 32] codes, d[groups] scales,
// sum[groups] code sums. x has cols elements. The reference and the fast kernels share it, so
// fast vs reference differences come from the products alone.
void QuantizeActivationRow(int8_t* q, float* d, int32_t* sum, const float* x, int64_t cols);

}  // namespace whale
