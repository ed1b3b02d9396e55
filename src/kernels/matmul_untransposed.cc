// MatMulUntransposed (kernels/matmul.h): y = x · W[row_begin:row_end], W's rows in their stored
// type, one Highway dynamic dispatch per call.
//
// F32, BF16 and FP8 rows are read in order, each once per call, so the weights are one
// sequential stream (what a decode step needs from memory): row i's decoded vectors are
// multiplied by each token's coefficient and added to that token's y row, which stays in L1 as
// the accumulator. The coefficient is x[t, i], times the row's 128-column block scale for FP8 (and
// the 2^8 that the FP8 decode leaves out), rounded once. FP8 codes are widened as the one-token
// kernel does (sign-extend, shift into F16 bits, convert); BF16 by a 16-bit shift.
//
// int8 / int4 rows (whale's blocks of 8 interleaved rows, kernels/quant.h, STORAGE): output j sums
// down W's column j, y[t, j] = Σ_i x[t, i] · scale[i, g(j)] · code[i, j]. The scale varies with the
// row inside that sum, so there is no integer dot to take; instead each (row, group) gets one F32
// coefficient x[t, i] · scale[i, g], and each code, converted to F32, is multiplied by it and
// accumulated in F32. int4's -8 offset is Σ_i -8 · coefficient, the same for every column of a
// group, added once at the end. x86 targets (AVX2 and up) walk the stored bytes in order, one row
// block (8 rows) at a time: a 32-byte chunk of a group holds 8 rows x 4 columns (byte 4r + c), read
// as four 8-lane vectors of two rows each; lane (r % 2, c) of the chunk's accumulator sums rows of
// one parity, and the two 128-bit halves are added when the column is written. The accumulators,
// [tokens, groups, 8 chunks, 8 lanes], stay in L1 for up to kUntransposedTile tokens, which share
// each chunk's conversion. Other targets run a portable scalar loop.
#include "kernels/simd_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_untransposed.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "tensor/dtype.h"
#include "util/error.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// The N weights of a row at element j, in F32 (FP8: value · 2^-8).
template <DType kType>
HWY_INLINE VF Decode(DF df, const void* row, int64_t j) {
  if constexpr (kType == DType::F32) {
    return hn::LoadU(df, static_cast<const float*>(row) + j);
  } else if constexpr (kType == DType::BF16) {
#if HWY_TARGET == HWY_SCALAR
    return hn::Set(df, Bf16ToF32(static_cast<const uint16_t*>(row)[j]));
#else
    const hn::Rebind<uint16_t, DF> d16;
    const hn::RebindToUnsigned<DF> d32;
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(
                               d32, hn::LoadU(d16, static_cast<const uint16_t*>(row) + j))));
#endif
  } else {
#if HWY_TARGET == HWY_SCALAR
    return hn::Set(df, F8E4M3ToF32(static_cast<const uint8_t*>(row)[j]) * 0x1p-8f);
#else
    const hn::Rebind<int16_t, DF> d16;
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto shifted =
        hn::ShiftLeft<7>(hn::PromoteTo(d16, hn::LoadU(d8, static_cast<const int8_t*>(row) + j)));
    return hn::PromoteTo(df, hn::BitCast(dh, hn::And(shifted, hn::Set(d16, int16_t(0xBFFF)))));
#endif
  }
}

// Element j of a row, exactly (FP8: value · 2^-8, as Decode).
template <DType kType>
float DecodeOne(const void* row, int64_t j) {
  if constexpr (kType == DType::F32) return static_cast<const float*>(row)[j];
  if constexpr (kType == DType::BF16) return Bf16ToF32(static_cast<const uint16_t*>(row)[j]);
  return F8E4M3ToF32(static_cast<const uint8_t*>(row)[j]) * 0x1p-8f;
}

template <DType kType>
void ColumnsImpl(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                 int64_t n, float* y) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t rows = row_end - row_begin, cols = w.cols;
  const int64_t row_bytes = cols * static_cast<int64_t>(SizeOf(kType));
  const int64_t grid_cols = (cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  // FP8 rows go one 128-column scale block at a time; F32 and BF16 rows in one piece.
  const int64_t piece = kType == DType::F8_E4M3 ? kWeightScaleBlock : cols;
  std::fill(y, y + n * cols, 0.0f);
  for (int64_t i = row_begin; i < row_end; ++i) {
    const void* row = static_cast<const uint8_t*>(w.data) + i * row_bytes;
    for (int64_t t = 0; t < n; ++t) {
      float* yt = y + t * cols;
      const float xi = x[t * rows + i - row_begin];
      for (int64_t j0 = 0; j0 < cols; j0 += piece) {
        const int64_t j_end = std::min(cols, j0 + piece);
        float coef = xi;
        if constexpr (kType == DType::F8_E4M3)
          coef *=
              w.block_scales[(i / kWeightScaleBlock) * grid_cols + j0 / kWeightScaleBlock] * 256.0f;
        const VF c = hn::Set(df, coef);
        int64_t j = j0;
        for (; j + N <= j_end; j += N)
          hn::StoreU(hn::MulAdd(Decode<kType>(df, row, j), c, hn::LoadU(df, yt + j)), df, yt + j);
        for (; j < j_end; ++j) yt[j] += DecodeOne<kType>(row, j) * coef;
      }
    }
  }
}

// int8 / int4: tokens whose accumulators ([groups, 8, 8] floats each: 4 KiB at 512 columns) stay
// in L1 while the weights stream past once for all of them.
constexpr int64_t kUntransposedTile = 4;
// A 32-byte chunk's slots: int8 has 8 chunks of 4 columns per group; int4 has 4 chunks whose low
// nibbles are columns 4k.. and high nibbles 16 + 4k.., i.e. slot 4 + k. Either way slot s holds
// the group's columns 4s .. 4s + 3.
constexpr int64_t kGroupSlots = 8;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2

// acc[8 lanes] += Σ_m w_m · coef_m, the chunk's four 2-row vectors.
inline void Accumulate(float* acc, const __m256 w[4], const __m256 coef[4]) {
  __m256 v = _mm256_loadu_ps(acc);
  for (int m = 0; m < 4; ++m) v = _mm256_fmadd_ps(w[m], coef[m], v);
  _mm256_storeu_ps(acc, v);
}

// Tokens [t0, t0 + tile) over rows [row_begin, row_end) into acc ([tile, groups, 8, 8], zeroed
// here) and, for int4, the coefficient sums csum ([tile, groups, 8 lanes]).
template <bool kInt4>
void TileColumns(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                 int64_t t0, int64_t tile, float* acc, float* csum) {
  const QuantFormat format = kInt4 ? QuantFormat::kInt4 : QuantFormat::kInt8;
  const int64_t rows = row_end - row_begin, cols = w.cols, groups = QuantGroups(cols);
  const int64_t block_bytes = QuantBlockBytes(format, cols);
  const int64_t per_token = groups * kGroupSlots * 8;
  std::fill(acc, acc + tile * per_token, 0.0f);
  if constexpr (kInt4) std::fill(csum, csum + tile * groups * 8, 0.0f);
  // Lane i of vector m takes row 2m + i / 4's coefficient.
  __m256i spread[4];
  for (int m = 0; m < 4; ++m)
    spread[m] =
        _mm256_setr_epi32(2 * m, 2 * m, 2 * m, 2 * m, 2 * m + 1, 2 * m + 1, 2 * m + 1, 2 * m + 1);
  const auto* data = static_cast<const uint8_t*>(w.data);
  for (int64_t rb = row_begin / kQuantRowBlock; rb < QuantRowBlocks(row_end); ++rb) {
    const uint8_t* block = data + rb * block_bytes;
    // The block's 8 activations per token; its rows outside [row_begin, row_end) (another
    // head's, or the padding past the matrix) count as 0.
    const int64_t first = std::max(row_begin, rb * kQuantRowBlock);
    const int64_t last = std::min(row_end, (rb + 1) * kQuantRowBlock);
    __m256 xs[kUntransposedTile];
    for (int64_t t = 0; t < tile; ++t) {
      alignas(32) float x8[kQuantRowBlock] = {};
      std::memcpy(x8 + (first - rb * kQuantRowBlock), x + (t0 + t) * rows + (first - row_begin),
                  static_cast<size_t>(last - first) * sizeof(float));
      xs[t] = _mm256_load_ps(x8);
    }
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* quad = block + QuantQuadOffset(format, g);
      const uint8_t* codes = block + QuantGroupCodeOffset(format, g);
      const __m256 scales = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(quad + (g % kQuantQuad) * 16)));
      __m256 coef[kUntransposedTile][4];
      for (int64_t t = 0; t < tile; ++t) {
        const __m256 c8 = _mm256_mul_ps(scales, xs[t]);
        for (int m = 0; m < 4; ++m) coef[t][m] = _mm256_permutevar8x32_ps(c8, spread[m]);
        if constexpr (kInt4) {
          float* s = csum + (t * groups + g) * 8;
          _mm256_storeu_ps(s, _mm256_add_ps(_mm256_loadu_ps(s), c8));
        }
      }
      float* group_acc = acc + g * kGroupSlots * 8;
      if constexpr (!kInt4) {
        for (int64_t k = 0; k < 8; ++k) {
          __m256 wk[4];
          for (int m = 0; m < 4; ++m)
            wk[m] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k * 32 + m * 8))));
          for (int64_t t = 0; t < tile; ++t)
            Accumulate(group_acc + t * per_token + k * 8, wk, coef[t]);
        }
      } else {
        const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
        for (int64_t k = 0; k < 4; ++k) {
          const __m256i bytes =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + k * 32));
          const __m256i halves[2] = {_mm256_and_si256(bytes, low_nibbles),
                                     _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles)};
          for (int h = 0; h < 2; ++h) {
            const __m128i lo = _mm256_castsi256_si128(halves[h]);
            const __m128i hi = _mm256_extracti128_si256(halves[h], 1);
            const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
            __m256 wk[4];
            for (int m = 0; m < 4; ++m) wk[m] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[m]));
            const int64_t slot = 4 * h + k;
            for (int64_t t = 0; t < tile; ++t)
              Accumulate(group_acc + t * per_token + slot * 8, wk, coef[t]);
          }
        }
      }
    }
  }
}

template <bool kInt4>
void QuantColumnsImpl(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                      int64_t n, float* y) {
  const int64_t cols = w.cols, groups = QuantGroups(cols);
  thread_local std::vector<float> acc_scratch, csum_scratch;
  acc_scratch.resize(static_cast<size_t>(kUntransposedTile * groups * kGroupSlots * 8));
  csum_scratch.resize(static_cast<size_t>(kUntransposedTile * groups * 8));
  float* acc = acc_scratch.data();
  float* csum = csum_scratch.data();
  for (int64_t t0 = 0; t0 < n; t0 += kUntransposedTile) {
    const int64_t tile = std::min(kUntransposedTile, n - t0);
    TileColumns<kInt4>(w, row_begin, row_end, x, t0, tile, acc, csum);
    for (int64_t t = 0; t < tile; ++t) {
      float* yt = y + (t0 + t) * cols;
      for (int64_t g = 0; g < groups; ++g) {
        float offset = 0.0f;  // int4: -8 · Σ_i coefficient
        if constexpr (kInt4) {
          const float* s = csum + (t * groups + g) * 8;
          float total = 0.0f;
          for (int i = 0; i < 8; ++i) total += s[i];
          offset = -8.0f * total;
        }
        for (int64_t slot = 0; slot < kGroupSlots; ++slot) {
          const float* lanes = acc + ((t * groups + g) * kGroupSlots + slot) * 8;
          for (int64_t c = 0; c < 4; ++c) {
            const int64_t col = g * kQuantGroup + slot * 4 + c;
            if (col < cols) yt[col] = lanes[c] + lanes[4 + c] + offset;
          }
        }
      }
    }
  }
}

#else  // portable targets

template <bool kInt4>
void QuantColumnsImpl(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                      int64_t n, float* y) {
  const QuantFormat format = kInt4 ? QuantFormat::kInt4 : QuantFormat::kInt8;
  const int64_t rows = row_end - row_begin, cols = w.cols, groups = QuantGroups(cols);
  const auto* data = static_cast<const uint8_t*>(w.data);
  for (int64_t t = 0; t < n; ++t) {
    float* yt = y + t * cols;
    std::fill(yt, yt + cols, 0.0f);
    for (int64_t i = row_begin; i < row_end; ++i)
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* scale = data + QuantScaleIndex(format, cols, i, g);
        const float coef =
            x[t * rows + i - row_begin] * F16ToF32(static_cast<uint16_t>(scale[0] | scale[1] << 8));
        for (int64_t col = g * kQuantGroup; col < std::min(cols, (g + 1) * kQuantGroup); ++col) {
          bool high = false;
          const uint8_t byte = data[QuantCodeIndex(format, cols, i, col, &high)];
          const int code = kInt4 ? (high ? byte >> 4 : byte & 0x0F) - 8 : static_cast<int8_t>(byte);
          yt[col] += coef * static_cast<float>(code);
        }
      }
  }
}

#endif

}  // namespace

void UntransposedColumns(const WeightMatrix* w, int64_t row_begin, int64_t row_end, const float* x,
                         int64_t n, float* y) {
  switch (w->dtype) {
    case DType::F32:
      return ColumnsImpl<DType::F32>(*w, row_begin, row_end, x, n, y);
    case DType::BF16:
      return ColumnsImpl<DType::BF16>(*w, row_begin, row_end, x, n, y);
    case DType::F8_E4M3:
      return ColumnsImpl<DType::F8_E4M3>(*w, row_begin, row_end, x, n, y);
    case DType::I8:
      return QuantColumnsImpl<false>(*w, row_begin, row_end, x, n, y);
    default:
      return QuantColumnsImpl<true>(*w, row_begin, row_end, x, n, y);
  }
}

}  // namespace whale::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(UntransposedColumns);

void MatMulUntransposed(std::span<float> y, std::span<const float> x, int64_t n,
                        const WeightMatrix& w, int64_t row_begin, int64_t row_end) {
  ValidateUntransposedArgs(y, x, n, w, row_begin, row_end, "MatMulUntransposed");
  const int64_t rows = row_end - row_begin;
  if (n == 0 || w.cols == 0) return;
  if (rows == 0) {
    std::fill(y.begin(), y.end(), 0.0f);
    return;
  }
  // The vector FP8 decode reads NaN codes as 480; matrices not known to be free of them take
  // the exact reference when they hold one (the loader marks every checkpoint it scanned).
  if (w.dtype == DType::F8_E4M3 && !w.fp8_nan_free &&
      Fp8HasNanCode(
          std::span<const uint8_t>(static_cast<const uint8_t*>(w.data) + row_begin * w.cols,
                                   static_cast<size_t>(rows * w.cols))))
    return MatMulUntransposedRef(y, x, n, w, row_begin, row_end);
  HWY_DYNAMIC_DISPATCH(UntransposedColumns)(&w, row_begin, row_end, x.data(), n, y.data());
}

}  // namespace whale
#endif  // HWY_ONCE
