#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/dtype.h"
#include "util/error.h"

namespace whale {
namespace {

// The F16 scale for a group whose largest magnitude `target` must be reached by `max_code`
// codes: F16(target / max_code), its magnitude bumped one ulp up if rounding made
// |scale| * max_code < |target|, so no code exceeds max_code before clamping.
uint16_t GroupScale(float target, float max_code, int64_t row, int64_t group) {
  uint16_t bits = F32ToF16(target / max_code);
  if (std::abs(static_cast<double>(F16ToF32(bits))) * max_code < std::abs(target)) ++bits;
  if (!std::isfinite(F16ToF32(bits)))
    Fail("quantize: row ", row, " group ", group, ": scale ", target / max_code,
         " is outside the F16 range (|value| <= 65504)");
  return bits;
}

}  // namespace

const char* QuantFormatName(QuantFormat format) {
  return format == QuantFormat::kInt8 ? "int8" : "int4";
}

int64_t QuantCodeIndex(QuantFormat format, int64_t cols, int64_t row, int64_t col, bool* high) {
  const int64_t base = (row / kQuantRowBlock) * QuantBlockBytes(format, cols) +
                       QuantGroupCodeOffset(format, col / kQuantGroup);
  const int64_t lane = (row % kQuantRowBlock) * 4;  // the row's 4 bytes within a chunk
  const int64_t i = col % kQuantGroup;
  if (format == QuantFormat::kInt8) {
    *high = false;
    return base + (i / 4) * 32 + lane + i % 4;
  }
  const int64_t byte = i % (kQuantGroup / 2);  // the row's group byte holding element i
  *high = i >= kQuantGroup / 2;
  return base + (byte / 4) * 32 + lane + byte % 4;
}

int64_t QuantScaleIndex(QuantFormat format, int64_t cols, int64_t row, int64_t group) {
  return (row / kQuantRowBlock) * QuantBlockBytes(format, cols) + QuantQuadOffset(format, group) +
         (group % kQuantQuad) * 16 + (row % kQuantRowBlock) * 2;
}

namespace {

uint16_t LoadF16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}

}  // namespace

void QuantizeRows(QuantFormat format, std::span<uint8_t> stored, std::span<const float> w,
                  int64_t rows, int64_t cols) {
  const int64_t groups = QuantGroups(cols);
  WHALE_ASSERT(rows >= 0 && cols >= 0 && static_cast<int64_t>(w.size()) == rows * cols &&
                   static_cast<int64_t>(stored.size()) == QuantStoredBytes(format, rows, cols),
               "QuantizeRows sizes");
  // Padding (rows of the last block, columns of the last group, scales past the last group)
  // stays 0: code 0, scale 0.
  std::fill(stored.begin(), stored.end(), uint8_t{0});
  const auto put = [&](int64_t r, int64_t col, uint8_t code) {
    bool high = false;
    uint8_t& byte = stored[QuantCodeIndex(format, cols, r, col, &high)];
    byte = format == QuantFormat::kInt8 ? code
                                        : static_cast<uint8_t>(byte | (high ? code << 4 : code));
  };
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data() + r * cols;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = g * kQuantGroup;
      const int64_t len = std::min(kQuantGroup, cols - begin);
      float extreme = 0.0f;  // the element of largest magnitude (the first, on ties)
      for (int64_t k = 0; k < len; ++k) {
        const float v = row[begin + k];
        if (!std::isfinite(v))
          Fail("quantize: row ", r, " column ", begin + k, ": non-finite weight ", v);
        if (std::abs(v) > std::abs(extreme)) extreme = v;
      }
      uint16_t scale_bits = 0;
      if (extreme != 0.0f) {
        scale_bits = format == QuantFormat::kInt8 ? GroupScale(std::abs(extreme), 127.0f, r, g)
                                                  : GroupScale(-extreme, 8.0f, r, g);
      }
      uint8_t* scale_at = &stored[QuantScaleIndex(format, cols, r, g)];
      scale_at[0] = static_cast<uint8_t>(scale_bits & 0xFF);
      scale_at[1] = static_cast<uint8_t>(scale_bits >> 8);
      const double scale = F16ToF32(scale_bits);
      for (int64_t k = 0; k < kQuantGroup; ++k) {
        // Padding columns: int8 code 0, int4 code 8; both dequantize to exactly 0.
        const double ratio = k >= len || scale == 0.0 ? 0.0 : row[begin + k] / scale;
        if (format == QuantFormat::kInt8) {
          const double q = std::clamp(std::nearbyint(ratio), -127.0, 127.0);
          put(r, begin + k, static_cast<uint8_t>(static_cast<int8_t>(q)));
        } else {
          put(r, begin + k, static_cast<uint8_t>(std::clamp(std::nearbyint(ratio), -8.0, 7.0) + 8));
        }
      }
    }
  }
}

void DequantizeCodes(QuantFormat format, std::span<float> out, const uint8_t* stored, int64_t cols,
                     int64_t row_begin, int64_t row_end) {
  WHALE_ASSERT(static_cast<int64_t>(out.size()) == (row_end - row_begin) * cols,
               "DequantizeCodes sizes");
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const float scale =
          F16ToF32(LoadF16(stored + QuantScaleIndex(format, cols, r, k / kQuantGroup)));
      bool high = false;
      const uint8_t byte = stored[QuantCodeIndex(format, cols, r, k, &high)];
      const int code = format == QuantFormat::kInt8 ? static_cast<int8_t>(byte)
                                                    : (high ? byte >> 4 : byte & 0x0F) - 8;
      out[(r - row_begin) * cols + k] = static_cast<float>(code) * scale;
    }
  }
}

void QuantizeActivationRow(int8_t* q, float* d, int32_t* sum, const float* x, int64_t cols) {
  const int64_t groups = QuantGroups(cols);
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = g * kQuantGroup;
    const int64_t len = std::min(kQuantGroup, cols - begin);
    float amax = 0.0f;
    bool finite = true;
    for (int64_t k = 0; k < len; ++k) {
      amax = std::max(amax, std::abs(x[begin + k]));
      finite = finite && std::isfinite(x[begin + k]);
    }
    // A non-finite activation makes its group's scale NaN (codes 0), so the products come out NaN
    // as an F32 product would, instead of casting NaN to an integer.
    const float inverse = amax > 0.0f && finite ? 127.0f / amax : 0.0f;
    d[g] = finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    int32_t s = 0;
    for (int64_t k = 0; k < kQuantGroup; ++k) {
      int8_t code = 0;
      if (k < len && finite)  // inf * 0 would be NaN
        code = static_cast<int8_t>(
            std::clamp(std::nearbyint(x[begin + k] * inverse), -127.0f, 127.0f));
      q[begin + k] = code;
      s += code;
    }
    sum[g] = s;
  }
}

}  // namespace whale
