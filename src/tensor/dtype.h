// Element types of stored tensors and exact conversions between them and float32.
//
// Conversions F32 -> BF16/F16/F8_E4M3 round to nearest, ties to even, and reproduce PyTorch's
// casts bit for bit (c10::BFloat16, c10::Half, c10::Float8_e4m3fn), including their special
// cases, documented on each function. Conversions to F32 are exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace whale {

// The storage types of the safetensors format. Only F32, BF16, F16 and F8_E4M3 are computed
// with; the others exist so that any valid safetensors file can be read and described.
enum class DType : uint8_t { F32, BF16, F16, F8_E4M3, F8_E5M2, F64, I64, I32, I16, I8, U8, BOOL };

size_t SizeOf(DType dtype);
// The safetensors spelling: "F32", "BF16", "F8_E4M3", ...
std::string_view Name(DType dtype);
std::optional<DType> ParseDType(std::string_view name);
// True for the types whale computes with (F32, BF16, F16, F8_E4M3).
bool IsComputeType(DType dtype);

// BF16: NaN becomes 0x7FC0 whatever its sign or payload, as the c10::BFloat16 constructor does
// (torch.tensor(x, dtype=torch.bfloat16)). PyTorch's CPU cast kernel (`.to(torch.bfloat16)`,
// SIMD) writes 0xFFFF instead; non-NaN results are identical (tests/tensor/dtype_torch_test.cc).
// Overflow rounds to ±inf (FLT_MAX becomes inf). Decoding is exact, NaN payloads kept as is.
uint16_t F32ToBf16(float value);
float Bf16ToF32(uint16_t bits);

// F16 (IEEE binary16): overflow (|x| >= 65520) becomes ±inf; NaN becomes sign|0x7E00 (every
// PyTorch path agrees). Decoding NaN keeps the payload and sets the quiet bit, as c10::Half does.
uint16_t F32ToF16(float value);
float F16ToF32(uint16_t bits);

// F8_E4M3 (float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN, max ±448, subnormals
// down to 2^-9). As c10::Float8_e4m3fn: |x| >= 480, ±inf and NaN become NaN (sign kept);
// |x| in [448, 464] rounds to ±448; |x| in (464, 480) rounds up to the NaN code, because
// the mantissa carry lands on S.1111.111. Block quantizers scale by amax/448 so that no
// input exceeds 448. Decoding S.1111.111 gives the float32 bits sign|0x7FF00000, as c10 does.
uint8_t F32ToF8E4M3(float value);
float F8E4M3ToF32(uint8_t bits);

// The largest finite F8_E4M3 magnitude.
inline constexpr float kF8E4M3Max = 448.0f;

// Bulk conversions. `src` holds n elements of `src_type` (a compute type); dst holds n floats.
void ConvertToF32(DType src_type, const void* src, std::span<float> dst);
void ConvertFromF32(DType dst_type, std::span<const float> src, void* dst);

}  // namespace whale
