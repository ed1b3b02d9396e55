#include "tensor/dtype.h"

#include <array>
#include <bit>
#include <cmath>

#include "util/error.h"

namespace whale {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},         {DType::BF16, "BF16", 2},       {DType::F16, "F16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},         {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},           {DType::U8, "U8", 1},           {DType::BOOL, "BOOL", 1},
};

const DTypeInfo& Info(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info;
  WHALE_ASSERT(false, "unknown dtype ", static_cast<int>(dtype));
}

}  // namespace

size_t SizeOf(DType dtype) {
  return Info(dtype).size;
}
std::string_view Name(DType dtype) {
  return Info(dtype).name;
}

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& info : kDTypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}

bool IsComputeType(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16 ||
         dtype == DType::F8_E4M3;
}

uint16_t F32ToBf16(float value) {
  if (std::isnan(value)) return 0x7FC0;
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest with ties to even.
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

float Bf16ToF32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t F32ToF16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7FFFFFFF;
  if (magnitude > 0x7F800000) return sign | 0x7E00;   // NaN
  if (magnitude >= 0x477FF000) return sign | 0x7C00;  // >= 65520: the tie above 65504 goes to inf
  if (magnitude >= 0x38800000) {                      // >= 2^-14: a normal half
    const uint32_t rounded = magnitude + 0xFFF + ((magnitude >> 13) & 1);
    // Rebias the exponent from 127 to 15 (subtract 112 << 23) and drop 13 mantissa bits.
    return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
  }
  // Subnormal half (unit 2^-24): in [0.5, 1) one float ulp is exactly 2^-24, so adding 0.5
  // makes the FPU round the magnitude to a multiple of 2^-24, ties to even.
  const float shifted = std::fabs(value) + 0.5f;
  return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(shifted) - 0x3F000000);
}

float F16ToF32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0x1F) {
    // Infinity, or NaN with its payload kept and the quiet bit set: c10::Half decodes through a
    // float multiply, which quiets signalling NaNs.
    const uint32_t quiet = mantissa != 0 ? 0x00400000 : 0;
    return std::bit_cast<float>(sign | 0x7F800000 | quiet | (mantissa << 13));
  }
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint8_t F32ToF8E4M3(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  bits &= 0x7FFFFFFF;
  uint8_t result;
  if (bits >= 0x43F00000) {  // >= 480.0f, inf or NaN
    result = 0x7F;
  } else if (bits < 0x3C800000) {  // < 2^-6: subnormal or zero
    // Subnormal unit is 2^-9: round value * 2^9 (exact, a power-of-two scale) to the nearest
    // integer, ties to even; 8 is the encoding of the smallest normal, 2^-6.
    const float scaled = std::bit_cast<float>(bits) * 512.0f;  // exact: a power-of-two scale
    result = static_cast<uint8_t>(std::nearbyint(scaled));
  } else {
    // Normal: keep 3 mantissa bits with ties to even, rebias the exponent from 127 to 7.
    const uint32_t rounded = bits + 0x7FFFF + ((bits >> 20) & 1);
    result = static_cast<uint8_t>((rounded - (120u << 23)) >> 20);
  }
  return result | sign;
}

namespace {

float DecodeF8E4M3(uint8_t bits) {
  const bool negative = bits & 0x80;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  // c10's bit-level decode turns S.1111.111 into the float32 S.11111111.1110...0 (a quiet NaN).
  if (exponent == 0xF && mantissa == 0x7)
    return std::bit_cast<float>(negative ? 0xFFF00000u : 0x7FF00000u);
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  } else {
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
  }
  return negative ? -magnitude : magnitude;
}

}  // namespace

float F8E4M3ToF32(uint8_t bits) {
  // All 256 values, decoded once (a function-local static, so usable during static
  // initialization): a lookup is far cheaper than ldexp per element.
  static const std::array<float, 256> values = [] {
    std::array<float, 256> table{};
    for (int code = 0; code < 256; ++code) table[code] = DecodeF8E4M3(static_cast<uint8_t>(code));
    return table;
  }();
  return values[bits];
}

void ConvertToF32(DType src_type, const void* src, std::span<float> dst) {
  const size_t n = dst.size();
  switch (src_type) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<const float*>(src)[i];
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::F8_E4M3:
      for (size_t i = 0; i < n; ++i) dst[i] = F8E4M3ToF32(static_cast<const uint8_t*>(src)[i]);
      return;
    default:
      Fail("cannot convert ", Name(src_type), " to F32");
  }
}

void ConvertFromF32(DType dst_type, std::span<const float> src, void* dst) {
  const size_t n = src.size();
  switch (dst_type) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) static_cast<float*>(dst)[i] = src[i];
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = F32ToBf16(src[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = F32ToF16(src[i]);
      return;
    case DType::F8_E4M3:
      for (size_t i = 0; i < n; ++i) static_cast<uint8_t*>(dst)[i] = F32ToF8E4M3(src[i]);
      return;
    default:
      Fail("cannot convert F32 to ", Name(dst_type));
  }
}

}  // namespace whale
