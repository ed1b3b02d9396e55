// MatMulUntransposed (kernels/matmul.h): y = x · W[row_begin:row_end] for F32, BF16 and FP8
// rows, one Highway dynamic dispatch per call; int8 / int4 rows go to
// quant_matmul_untransposed.cc.
//
// The rows are read in order, each once per call, so the weights are one sequential stream (what
// a decode step needs from memory): row i's decoded vectors are multiplied by each token's
// coefficient and added to that token's y row, which stays in L1 as the accumulator. The
// coefficient is x[t, i], times the row's 128-column block scale for FP8 (and the 2^8 that the
// FP8 decode leaves out), rounded once. FP8 codes are widened as the one-token kernel does
// (sign-extend, shift into F16 bits, convert); BF16 by a 16-bit shift.
#include "kernels/simd_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_untransposed.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>

#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"
#include "tensor/dtype.h"
#include "util/error.h"

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

}  // namespace

void DenseColumns(const WeightMatrix* w, int64_t row_begin, int64_t row_end, const float* x,
                  int64_t n, float* y) {
  switch (w->dtype) {
    case DType::F32:
      return ColumnsImpl<DType::F32>(*w, row_begin, row_end, x, n, y);
    case DType::BF16:
      return ColumnsImpl<DType::BF16>(*w, row_begin, row_end, x, n, y);
    default:
      return ColumnsImpl<DType::F8_E4M3>(*w, row_begin, row_end, x, n, y);
  }
}

}  // namespace whale::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(DenseColumns);

void MatMulUntransposed(std::span<float> y, std::span<const float> x, int64_t n,
                        const WeightMatrix& w, int64_t row_begin, int64_t row_end) {
  ValidateWeightMatrix(w, "MatMulUntransposed");
  if (row_begin < 0 || row_end < row_begin || row_end > w.rows)
    Fail("MatMulUntransposed: rows [", row_begin, ", ", row_end, ") are not within [0, ", w.rows,
         ")");
  const int64_t rows = row_end - row_begin;
  if (n < 0 || static_cast<int64_t>(x.size()) != n * rows ||
      static_cast<int64_t>(y.size()) != n * w.cols)
    Fail("MatMulUntransposed: x has ", x.size(), " values and y ", y.size(), ", expected ", n,
         " x ", rows, " and ", n, " x ", w.cols);
  if (n == 0 || w.cols == 0) return;
  if (rows == 0) {
    std::fill(y.begin(), y.end(), 0.0f);
    return;
  }
  if (w.dtype == DType::I8 || w.dtype == DType::U8)
    return MatMulQuantUntransposed(y, x, n, w, row_begin, row_end);
  // The vector FP8 decode reads NaN codes as 480; matrices not known to be free of them take
  // the exact reference (the loader marks every checkpoint it scanned).
  if (w.dtype == DType::F8_E4M3 && !w.fp8_nan_free &&
      Fp8HasNanCode(
          std::span<const uint8_t>(static_cast<const uint8_t*>(w.data) + row_begin * w.cols,
                                   static_cast<size_t>(rows * w.cols))))
    return MatMulUntransposedRef(y, x, n, w, row_begin, row_end);
  HWY_DYNAMIC_DISPATCH(DenseColumns)(&w, row_begin, row_end, x.data(), n, y.data());
}

}  // namespace whale
#endif  // HWY_ONCE
