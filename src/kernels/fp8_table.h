// The BF16 bytes of every FP8 e4m3 magnitude, for the table decode of the one-token FP8 kernel
// (fp8_table-inl.h); constexpr, so the kernels read them from read-only data.
#pragma once

#include <cstdint>

namespace whale {

constexpr int64_t kFp8TableChunk = 64;  // codes per table lookup (one 512-bit vector)

// The BF16 bits of the e4m3 magnitude m (0..127): normal codes keep their 3 mantissa bits and
// rebias the exponent (7 -> 127); subnormals (exponent 0, m / 8 · 2^-6) are normalized; 0x7F is
// NaN.
constexpr uint16_t Bf16OfE4M3Magnitude(int m) {
  const int exponent = m >> 3, mantissa = m & 7;
  if (m == 0x7F) return 0x7FC0;
  if (m == 0) return 0;
  if (exponent != 0) return static_cast<uint16_t>(((exponent + 120) << 7) | (mantissa << 4));
  int top = 2;  // the highest set bit of the subnormal's mantissa: value 2^(top - 9) · (1 + f)
  while (!(mantissa >> top)) --top;
  const int fraction = mantissa - (1 << top);  // the bits below it, moved up to BF16's 7 bits
  return static_cast<uint16_t>(((118 + top) << 7) | (fraction << (7 - top)));
}

struct Fp8ByteTables {
  alignas(64) uint8_t high[128];  // BF16 bits 15..8 (sign 0)
  alignas(64) uint8_t low[128];   // BF16 bits 7..0
};

constexpr Fp8ByteTables MakeFp8ByteTables() {
  Fp8ByteTables tables{};
  for (int m = 0; m < 128; ++m) {
    tables.high[m] = static_cast<uint8_t>(Bf16OfE4M3Magnitude(m) >> 8);
    tables.low[m] = static_cast<uint8_t>(Bf16OfE4M3Magnitude(m) & 0xFF);
  }
  return tables;
}
inline constexpr Fp8ByteTables kFp8ByteTables = MakeFp8ByteTables();

}  // namespace whale
