// Slow, independent references for the 16- and 8-bit float formats, written from their
// definitions (sign, biased exponent, mantissa) rather than from bit tricks, so that the tests can
// compare whale's fast conversions against them over every code.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace whale::testing {

// One small binary float format: 1 sign bit, `exponent_bits`, `mantissa_bits`, IEEE-like
// subnormals. `has_infinity`: the all-ones exponent is inf/NaN (BF16, F16). Without it
// (float8_e4m3fn) only the all-ones code S.1111.111 is NaN and the rest of that binade is finite.
struct FloatFormat {
  const char* name;
  int exponent_bits;
  int mantissa_bits;
  bool has_infinity;

  int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  uint32_t sign_bit() const { return 1u << (exponent_bits + mantissa_bits); }
  uint32_t n_codes() const { return sign_bit() << 1; }
  uint32_t exponent_field(uint32_t code) const {
    return (code >> mantissa_bits) & ((1u << exponent_bits) - 1);
  }
  uint32_t mantissa_field(uint32_t code) const { return code & ((1u << mantissa_bits) - 1); }
  bool is_nan(uint32_t code) const {
    const uint32_t all_ones = (1u << exponent_bits) - 1;
    if (has_infinity) return exponent_field(code) == all_ones && mantissa_field(code) != 0;
    return (code & (sign_bit() - 1)) == sign_bit() - 1;
  }
  // The largest positive finite code; the next code is +inf (BF16, F16) or NaN (F8_E4M3).
  uint32_t max_finite_code() const {
    if (has_infinity) return (((1u << exponent_bits) - 1) << mantissa_bits) - 1;
    return sign_bit() - 2;
  }
  uint32_t overflow_code() const { return max_finite_code() + 1; }

  // The value of a non-NaN code, computed in double from the definition:
  // exponent 0: (-1)^s * 2^(1 - bias) * m / 2^M; otherwise (-1)^s * 2^(e - bias) * (1 + m / 2^M).
  double Decode(uint32_t code) const {
    const bool negative = (code & sign_bit()) != 0;
    const int e = static_cast<int>(exponent_field(code));
    const double m = static_cast<double>(mantissa_field(code));
    const double unit = std::ldexp(1.0, -mantissa_bits);
    double magnitude;
    if (has_infinity && e == (1 << exponent_bits) - 1) {
      magnitude = std::numeric_limits<double>::infinity();
    } else if (e == 0) {
      magnitude = std::ldexp(m * unit, 1 - bias());
    } else {
      magnitude = std::ldexp(1.0 + m * unit, e - bias());
    }
    return negative ? -magnitude : magnitude;
  }

  // The rounding boundary between positive finite code c and c + 1, in double: the exact average;
  // above the largest finite code, the value half an ulp past it (where overflow begins).
  double MidpointAbove(uint32_t c) const {
    const double low = Decode(c);
    if (c < max_finite_code()) return (low + Decode(c + 1)) / 2;
    return low + (low - Decode(c - 1)) / 2;
  }
};

inline constexpr FloatFormat kBf16Format{"BF16", 8, 7, true};
inline constexpr FloatFormat kF16Format{"F16", 5, 10, true};
inline constexpr FloatFormat kF8E4M3Format{"F8_E4M3", 4, 3, false};

// Round-to-nearest-even encoder by search: the nearest code by value, ties to the code with an
// even mantissa (an even code number), anything past the overflow threshold (or the threshold
// itself when the largest code is odd) to the code after the largest finite one. `nan_code` is
// what NaN inputs become (the sign bit is added by the caller's convention, see below).
class ReferenceEncoder {
 public:
  explicit ReferenceEncoder(const FloatFormat& format) : format_(format) {
    for (uint32_t c = 0; c <= format.max_finite_code(); ++c) values_.push_back(format.Decode(c));
  }

  // Encodes a non-NaN float.
  uint32_t Encode(float x) const {
    const uint32_t sign = std::signbit(x) ? format_.sign_bit() : 0;
    const double m = std::fabs(static_cast<double>(x));
    // The largest code whose value is <= m.
    const auto it = std::upper_bound(values_.begin(), values_.end(), m);
    const uint32_t low = static_cast<uint32_t>(it - values_.begin()) - 1;
    const double above = low < format_.max_finite_code()
                             ? values_[low + 1]
                             : 2 * format_.MidpointAbove(low) - values_[low];
    // Differences of nearby floats are exact in double (Sterbenz), so the comparison is exact.
    const double to_low = m - values_[low];
    const double to_high = above - m;
    uint32_t code;
    if (to_low < to_high) {
      code = low;
    } else if (to_low > to_high) {
      code = low + 1;
    } else {
      code = (low % 2 == 0) ? low : low + 1;
    }
    return sign | code;
  }

 private:
  FloatFormat format_;
  std::vector<double> values_;  // [max_finite_code + 1] positive finite values, increasing
};

inline float FloatFromBits(uint32_t bits) {
  return std::bit_cast<float>(bits);
}
inline uint32_t BitsOf(float value) {
  return std::bit_cast<uint32_t>(value);
}

// The float32 inputs around every rounding boundary, in the order tools/fixtures/dtype_fixtures.py
// documents: for each positive finite code c (increasing), m = MidpointAbove(c), then for sign in
// (+, -), for d in (-1, 0, +1): the float whose magnitude bits are bits(m) + d.
inline std::vector<uint32_t> MidpointInputs(const FloatFormat& format) {
  std::vector<uint32_t> inputs;
  for (uint32_t c = 0; c <= format.max_finite_code(); ++c) {
    const float mid = static_cast<float>(format.MidpointAbove(c));
    for (uint32_t sign : {0u, 0x80000000u})
      for (int d : {-1, 0, 1}) inputs.push_back((BitsOf(mid) + static_cast<uint32_t>(d)) | sign);
  }
  return inputs;
}

// FNV-1a, 64 bits, over little-endian bytes: the digest the fixture script writes.
class Fnv1a64 {
 public:
  void Add(uint64_t value, int n_bytes) {
    for (int i = 0; i < n_bytes; ++i) {
      hash_ = (hash_ ^ ((value >> (8 * i)) & 0xFF)) * 0x100000001B3ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xCBF29CE484222325ull;
};

}  // namespace whale::testing
