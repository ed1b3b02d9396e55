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

void QuantizeRows(QuantFormat format, std::span<uint8_t> codes, std::span<uint16_t> scales,
                  std::span<const float> w, int64_t rows, int64_t cols) {
  const int64_t groups = QuantGroups(cols);
  const int64_t row_bytes = QuantRowBytes(format, cols);
  WHALE_ASSERT(rows >= 0 && cols >= 0 && static_cast<int64_t>(w.size()) == rows * cols &&
                   static_cast<int64_t>(codes.size()) == rows * row_bytes &&
                   static_cast<int64_t>(scales.size()) == rows * groups,
               "QuantizeRows sizes");
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data() + r * cols;
    uint8_t* out = codes.data() + r * row_bytes;
    std::fill(out, out + row_bytes, uint8_t{0});
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
      scales[r * groups + g] = scale_bits;
      const double scale = F16ToF32(scale_bits);
      for (int64_t k = 0; k < len; ++k) {
        const double ratio = scale == 0.0 ? 0.0 : row[begin + k] / scale;
        if (format == QuantFormat::kInt8) {
          const double q = std::clamp(std::nearbyint(ratio), -127.0, 127.0);
          out[begin + k] = static_cast<uint8_t>(static_cast<int8_t>(q));
        } else {
          const auto c = static_cast<uint8_t>(std::clamp(std::nearbyint(ratio), -8.0, 7.0) + 8);
          uint8_t& byte = out[g * (kQuantGroup / 2) + k % (kQuantGroup / 2)];
          byte = static_cast<uint8_t>(byte | (k < kQuantGroup / 2 ? c : c << 4));
        }
      }
      if (format == QuantFormat::kInt4) {
        // Padding elements must dequantize to 0: code 8.
        for (int64_t k = len; k < kQuantGroup; ++k) {
          uint8_t& byte = out[g * (kQuantGroup / 2) + k % (kQuantGroup / 2)];
          byte = static_cast<uint8_t>(byte | (k < kQuantGroup / 2 ? 8 : 8 << 4));
        }
      }
    }
  }
}

void DequantizeCodes(QuantFormat format, std::span<float> out, const uint8_t* codes,
                     const uint16_t* scales, int64_t rows, int64_t cols) {
  const int64_t groups = QuantGroups(cols);
  const int64_t row_bytes = QuantRowBytes(format, cols);
  WHALE_ASSERT(static_cast<int64_t>(out.size()) == rows * cols, "DequantizeCodes sizes");
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = codes + r * row_bytes;
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t g = k / kQuantGroup;
      const int64_t i = k % kQuantGroup;
      const float scale = F16ToF32(scales[r * groups + g]);
      int code;
      if (format == QuantFormat::kInt8) {
        code = static_cast<int8_t>(row[k]);
      } else {
        const uint8_t byte = row[g * (kQuantGroup / 2) + i % (kQuantGroup / 2)];
        code = (i < kQuantGroup / 2 ? byte & 0x0F : byte >> 4) - 8;
      }
      out[r * cols + k] = static_cast<float>(code) * scale;
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
