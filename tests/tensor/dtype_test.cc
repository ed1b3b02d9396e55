// Exhaustive tests of the F32 <-> BF16 / F16 / F8_E4M3 conversions against references written
// from the format definitions (dtype_reference.h). PyTorch's own results are checked separately
// against a committed fixture (dtype_torch_test.cc).
#include "tensor/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dtype_reference.h"
#include "util/error.h"

namespace whale {
namespace {

using testing::BitsOf;
using testing::FloatFormat;
using testing::FloatFromBits;
using testing::ReferenceEncoder;

// One conversion pair under test, with the NaN conventions whale documents in dtype.h.
struct Codec {
  FloatFormat format;
  uint32_t (*encode)(float);
  float (*decode)(uint32_t);
  // What a NaN input encodes to, given the input's sign.
  uint32_t (*nan_code)(bool negative);
  // The float32 bits a NaN code decodes to (PyTorch's).
  uint32_t (*nan_decode_bits)(uint32_t code);
};

const Codec kCodecs[] = {
    {testing::kBf16Format, [](float x) -> uint32_t { return F32ToBf16(x); },
     [](uint32_t c) { return Bf16ToF32(static_cast<uint16_t>(c)); },
     // c10::BFloat16 drops sign and payload.
     [](bool) -> uint32_t { return 0x7FC0; },
     // BF16 is the upper half of a float32: the payload and quiet bit stay as they are.
     [](uint32_t c) -> uint32_t { return c << 16; }},
    {testing::kF16Format, [](float x) -> uint32_t { return F32ToF16(x); },
     [](uint32_t c) { return F16ToF32(static_cast<uint16_t>(c)); },
     [](bool negative) -> uint32_t { return negative ? 0xFE00 : 0x7E00; },
     // Payload kept, quiet bit set.
     [](uint32_t c) -> uint32_t {
       return ((c & 0x8000) << 16) | 0x7FC00000 | ((c & 0x3FF) << 13);
     }},
    {testing::kF8E4M3Format, [](float x) -> uint32_t { return F32ToF8E4M3(x); },
     [](uint32_t c) { return F8E4M3ToF32(static_cast<uint8_t>(c)); },
     [](bool negative) -> uint32_t { return negative ? 0xFF : 0x7F; },
     [](uint32_t c) -> uint32_t { return (c & 0x80) ? 0xFFF00000 : 0x7FF00000; }},
};

// The expected code for any float input: the search reference, or the NaN convention.
uint32_t Expected(const Codec& codec, const ReferenceEncoder& reference, float x) {
  if (std::isnan(x)) return codec.nan_code(std::signbit(x));
  return reference.Encode(x);
}

TEST(DType, DecodeMatchesTheFormatDefinitionForEveryCode) {
  for (const Codec& codec : kCodecs) {
    SCOPED_TRACE(codec.format.name);
    int n_nan = 0;
    for (uint32_t code = 0; code < codec.format.n_codes(); ++code) {
      const float got = codec.decode(code);
      if (codec.format.is_nan(code)) {
        ++n_nan;
        EXPECT_EQ(BitsOf(got), codec.nan_decode_bits(code)) << "code 0x" << std::hex << code;
        continue;
      }
      const double want = codec.format.Decode(code);
      // Every code is exactly a float32; compare bits so that -0 and +0 are told apart.
      EXPECT_EQ(BitsOf(got), BitsOf(static_cast<float>(want)))
          << "code 0x" << std::hex << code << ": got " << got << ", want " << want;
      EXPECT_EQ(static_cast<double>(got), want) << "code 0x" << std::hex << code;
    }
    // BF16 and F16 have 2 * (2^M - 1) NaN codes, float8_e4m3fn exactly two.
    const int want_nan =
        codec.format.has_infinity ? 2 * ((1 << codec.format.mantissa_bits) - 1) : 2;
    EXPECT_EQ(n_nan, want_nan);
  }
}

TEST(DType, F8E4M3DecodeTable) {
  // Spot values from the format definition (spec 3.3), as a second, readable check.
  EXPECT_EQ(F8E4M3ToF32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(F8E4M3ToF32(0x80)));
  EXPECT_EQ(F8E4M3ToF32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal 2^-6 * 1/8
  EXPECT_EQ(F8E4M3ToF32(0x07), std::ldexp(7.0f, -9));  // largest subnormal 2^-6 * 7/8
  EXPECT_EQ(F8E4M3ToF32(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(F8E4M3ToF32(0x38), 1.0f);                  // 0.0111.000
  EXPECT_EQ(F8E4M3ToF32(0x77), 240.0f);                // 0.1110.111
  EXPECT_EQ(F8E4M3ToF32(0x78), 256.0f);                // 0.1111.000: finite, no infinity
  EXPECT_EQ(F8E4M3ToF32(0x7E), kF8E4M3Max);            // 0.1111.110 = 448
  EXPECT_EQ(F8E4M3ToF32(0xFE), -kF8E4M3Max);
  EXPECT_TRUE(std::isnan(F8E4M3ToF32(0x7F)));
  EXPECT_TRUE(std::isnan(F8E4M3ToF32(0xFF)));
}

TEST(DType, EncodeOfDecodeIsIdentityForEveryCode) {
  for (const Codec& codec : kCodecs) {
    SCOPED_TRACE(codec.format.name);
    for (uint32_t code = 0; code < codec.format.n_codes(); ++code) {
      const uint32_t want =
          codec.format.is_nan(code) ? codec.nan_code((code & codec.format.sign_bit()) != 0) : code;
      EXPECT_EQ(codec.encode(codec.decode(code)), want) << "code 0x" << std::hex << code;
    }
  }
}

// At every boundary between consecutive codes c and c + 1: one float32 ulp below goes to c, one
// above to c + 1, the exact midpoint to the even one. Past the largest finite code, c + 1 is the
// overflow code: +inf for BF16 and F16; for F8_E4M3 it is 0x7F, the NaN code (see the F8 tests).
TEST(DType, RoundsToNearestEvenAtEveryMidpoint) {
  for (const Codec& codec : kCodecs) {
    SCOPED_TRACE(codec.format.name);
    for (uint32_t c = 0; c <= codec.format.max_finite_code(); ++c) {
      const double mid = codec.format.MidpointAbove(c);
      const float mid32 = static_cast<float>(mid);
      ASSERT_EQ(static_cast<double>(mid32), mid) << "midpoint not a float32, code " << c;
      const uint32_t even = (c % 2 == 0) ? c : c + 1;
      for (uint32_t sign : {0u, 0x80000000u}) {
        const uint32_t sign_code = sign ? codec.format.sign_bit() : 0;
        const uint32_t bits = BitsOf(mid32) | sign;
        EXPECT_EQ(codec.encode(FloatFromBits(bits - 1)), sign_code | c)
            << "just below the midpoint above code 0x" << std::hex << c;
        EXPECT_EQ(codec.encode(FloatFromBits(bits)), sign_code | even)
            << "at the midpoint above code 0x" << std::hex << c;
        EXPECT_EQ(codec.encode(FloatFromBits(bits + 1)), sign_code | (c + 1))
            << "just above the midpoint above code 0x" << std::hex << c;
      }
    }
  }
}

// Every 4093rd float32 bit pattern (a prime stride, so all exponent/mantissa mixes occur),
// including denormals, infinities and NaNs of both signs, against the search reference.
TEST(DType, MatchesSearchReferenceAcrossAllFloat32) {
  for (const Codec& codec : kCodecs) {
    SCOPED_TRACE(codec.format.name);
    const ReferenceEncoder reference(codec.format);
    int mismatches = 0;
    for (uint64_t bits = 17; bits < (1ull << 32) && mismatches < 10; bits += 4093) {
      const float x = FloatFromBits(static_cast<uint32_t>(bits));
      const uint32_t want = Expected(codec, reference, x);
      const uint32_t got = codec.encode(x);
      if (got != want) {
        ++mismatches;
        ADD_FAILURE() << "input bits 0x" << std::hex << bits << ": got 0x" << got << ", want 0x"
                      << want;
      }
    }
  }
}

TEST(DType, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // NaNs with signs and payloads, quiet and signalling.
  const uint32_t nans[] = {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,
                           0x7FA12345, 0xFFFFFFFF, 0x7FBFFFFF, 0x7FC00001};
  for (uint32_t bits : nans) {
    const float x = FloatFromBits(bits);
    const bool negative = (bits >> 31) != 0;
    EXPECT_EQ(F32ToBf16(x), 0x7FC0) << std::hex << bits;
    EXPECT_EQ(F32ToF16(x), negative ? 0xFE00 : 0x7E00) << std::hex << bits;
    EXPECT_EQ(F32ToF8E4M3(x), negative ? 0xFF : 0x7F) << std::hex << bits;
  }
  EXPECT_EQ(F32ToBf16(0.0f), 0x0000);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF8E4M3(-0.0f), 0x80);
  EXPECT_EQ(F32ToBf16(inf), 0x7F80);
  EXPECT_EQ(F32ToBf16(-inf), 0xFF80);
  EXPECT_EQ(F32ToF16(inf), 0x7C00);
  EXPECT_EQ(F32ToF16(-inf), 0xFC00);
  // float8_e4m3fn has no infinity: ±inf becomes the NaN code with its sign.
  EXPECT_EQ(F32ToF8E4M3(inf), 0x7F);
  EXPECT_EQ(F32ToF8E4M3(-inf), 0xFF);
  EXPECT_TRUE(std::isinf(Bf16ToF32(0x7F80)));
  EXPECT_TRUE(std::isinf(F16ToF32(0xFC00)) && F16ToF32(0xFC00) < 0);
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(nan))));
}

TEST(DType, Bf16OverflowAndUnderflow) {
  // FLT_MAX is past the BF16 overflow threshold (0x7F7F8000) and rounds to inf.
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x7F7F7FFF)), 0x7F7F);
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x7F7F8000)), 0x7F80);  // tie, 0x7F7F is odd
  // BF16 shares float32's exponent range: float32 denormals round to BF16 denormals.
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x00000001)), 0x0000);
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x00008000)), 0x0000);  // tie between 0 and 0x0001
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x00018000)), 0x0002);  // tie between 1 and 2
  EXPECT_EQ(F32ToBf16(FloatFromBits(0x807FFFFF)), 0x8080);  // rounds up into the normals
}

TEST(DType, F16OverflowAndSubnormals) {
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // the tie above the max goes to inf (0x7BFF is odd)
  EXPECT_EQ(F32ToF16(-1e10f), 0xFC00);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie with 0: to even
  EXPECT_EQ(F32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);     // tie between 1 and 2: to even
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(F32ToF16(std::ldexp(2047.0f, -25)), 0x0400);  // tie 0x03FF / 0x0400: even is 0x0400
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

// PyTorch's float8_e4m3fn cast (c10/util/Float8_e4m3fn.h, fp8e4m3fn_from_fp32_value) does not
// saturate. Magnitudes >= 480 (and inf, NaN) become the NaN code directly. Below 480 it rounds the
// mantissa to 3 bits, nearest-even, in the integer domain, and a carry out of 0.1111.110 (448)
// lands on 0.1111.111, which is NaN. So [448, 464] -> 448 (464 is the tie, 448 is even) and
// (464, 480) -> NaN. The issue text's "[448, 480) rounds to ±448" is not what PyTorch does;
// whale follows PyTorch's source. Block quantizers scale by amax / 448, so no input exceeds 448.
TEST(DType, F8E4M3TopOfRangeFollowsPyTorch) {
  const uint32_t begin = BitsOf(440.0f);
  const uint32_t end = BitsOf(490.0f);
  for (uint32_t bits = begin; bits <= end; ++bits) {
    const float x = FloatFromBits(bits);
    // 448 for (432, 464]: 464 is the tie between 448 (0x7E, even) and the carry code 0x7F.
    // The NaN code for (464, 480) by the mantissa carry and for [480, inf) by the range check.
    const uint8_t expected = x <= 464.0f ? 0x7E : 0x7F;
    ASSERT_EQ(F32ToF8E4M3(x), expected) << x;
    ASSERT_EQ(F32ToF8E4M3(-x), expected | 0x80) << -x;
  }
  EXPECT_EQ(F32ToF8E4M3(448.0f), 0x7E);
  EXPECT_EQ(F32ToF8E4M3(464.0f), 0x7E);
  EXPECT_EQ(F32ToF8E4M3(std::nextafter(464.0f, 1000.0f)), 0x7F);
  EXPECT_EQ(F32ToF8E4M3(std::nextafter(480.0f, 0.0f)), 0x7F);
  EXPECT_EQ(F32ToF8E4M3(480.0f), 0x7F);
  EXPECT_EQ(F32ToF8E4M3(1e30f), 0x7F);
  EXPECT_EQ(F32ToF8E4M3(-465.0f), 0xFF);
  EXPECT_EQ(F32ToF8E4M3(432.0f), 0x7E);  // tie between 416 (0x7D, odd) and 448 (0x7E)
  EXPECT_EQ(F32ToF8E4M3(std::nextafter(432.0f, 0.0f)), 0x7D);
}

TEST(DType, F8E4M3Subnormals) {
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(1.0f, -9)), 0x01);   // smallest subnormal
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(1.0f, -10)), 0x00);  // tie with 0: to even
  EXPECT_EQ(F32ToF8E4M3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(3.0f, -10)), 0x02);   // tie between 1 and 2
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(5.0f, -10)), 0x02);   // tie between 2 and 3
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(15.0f, -10)), 0x08);  // tie 7/8: to the smallest normal
  EXPECT_EQ(F32ToF8E4M3(std::nextafter(std::ldexp(1.0f, -6), 0.0f)), 0x08);
  EXPECT_EQ(F32ToF8E4M3(-std::ldexp(7.0f, -9)), 0x87);
  EXPECT_EQ(F32ToF8E4M3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(F32ToF8E4M3(-std::numeric_limits<float>::denorm_min()), 0x80);
}

TEST(DType, BulkConversionsMatchScalarOnes) {
  for (size_t n : {0u, 1u, 31u, 32u, 33u, 127u, 129u, 4099u}) {
    std::vector<float> src(n);
    for (size_t i = 0; i < n; ++i)
      src[i] = std::ldexp(static_cast<float>(i % 97) - 48.5f, static_cast<int>(i % 23) - 11);
    std::vector<uint16_t> bf16(n), f16(n);
    std::vector<uint8_t> f8(n);
    std::vector<float> back(n), copy(n);
    ConvertFromF32(DType::BF16, src, bf16.data());
    ConvertFromF32(DType::F16, src, f16.data());
    ConvertFromF32(DType::F8_E4M3, src, f8.data());
    ConvertFromF32(DType::F32, src, copy.data());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(bf16[i], F32ToBf16(src[i]));
      ASSERT_EQ(f16[i], F32ToF16(src[i]));
      ASSERT_EQ(f8[i], F32ToF8E4M3(src[i]));
      ASSERT_EQ(BitsOf(copy[i]), BitsOf(src[i]));
    }
    ConvertToF32(DType::BF16, bf16.data(), back);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(BitsOf(back[i]), BitsOf(Bf16ToF32(bf16[i])));
    ConvertToF32(DType::F16, f16.data(), back);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(BitsOf(back[i]), BitsOf(F16ToF32(f16[i])));
    ConvertToF32(DType::F8_E4M3, f8.data(), back);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(BitsOf(back[i]), BitsOf(F8E4M3ToF32(f8[i])));
    ConvertToF32(DType::F32, src.data(), back);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(BitsOf(back[i]), BitsOf(src[i]));
  }
}

TEST(DType, BulkConversionOfANonComputeTypeIsAnError) {
  const int32_t ints[2] = {1, 2};
  std::vector<float> out(2);
  try {
    ConvertToF32(DType::I32, ints, out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot convert I32 to F32");
  }
  EXPECT_THROW(ConvertFromF32(DType::F8_E5M2, out, nullptr), Error);
}

TEST(DType, NamesSizesAndParsing) {
  const struct {
    DType dtype;
    const char* name;
    size_t size;
    bool compute;
  } table[] = {
      {DType::F32, "F32", 4, true},          {DType::BF16, "BF16", 2, true},
      {DType::F16, "F16", 2, true},          {DType::F8_E4M3, "F8_E4M3", 1, true},
      {DType::F8_E5M2, "F8_E5M2", 1, false}, {DType::F64, "F64", 8, false},
      {DType::I64, "I64", 8, false},         {DType::I32, "I32", 4, false},
      {DType::I16, "I16", 2, false},         {DType::I8, "I8", 1, false},
      {DType::U8, "U8", 1, false},           {DType::BOOL, "BOOL", 1, false},
  };
  for (const auto& row : table) {
    EXPECT_EQ(Name(row.dtype), row.name);
    EXPECT_EQ(SizeOf(row.dtype), row.size) << row.name;
    EXPECT_EQ(IsComputeType(row.dtype), row.compute) << row.name;
    ASSERT_TRUE(ParseDType(row.name).has_value()) << row.name;
    EXPECT_EQ(*ParseDType(row.name), row.dtype);
  }
  EXPECT_FALSE(ParseDType("f32").has_value());  // the safetensors spelling is upper case
  EXPECT_FALSE(ParseDType("F8_E4M3FN").has_value());
  EXPECT_FALSE(ParseDType("").has_value());
}

}  // namespace
}  // namespace whale
