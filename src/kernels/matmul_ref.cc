// The obviously correct side of matmul.h: argument checks, exact dequantization and the
// reference product. Compiled with the strict floating-point flags of the kernels layer (unlike
// matmul.cc, no reassociation).
#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/quant.h"
#include "kernels/quant_matmul.h"

#include "util/error.h"

namespace whale {
namespace {

int64_t ScaleGridCols(const WeightMatrix& w) {
  return (w.cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
}

// One element of W, dequantized as spec 3.3 defines it.
float DequantizedElement(const WeightMatrix& w, int64_t i, int64_t j) {
  const int64_t index = i * w.cols + j;
  switch (w.dtype) {
    case DType::F32:
      return static_cast<const float*>(w.data)[index];
    case DType::BF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w.data)[index]);
    case DType::F8_E4M3: {
      const float scale =
          w.block_scales[(i / kWeightScaleBlock) * ScaleGridCols(w) + j / kWeightScaleBlock];
      return F8E4M3ToF32(static_cast<const uint8_t*>(w.data)[index]) * scale;
    }
    default:
      WHALE_ASSERT(false, "unchecked weight dtype ", Name(w.dtype));
  }
}

bool IsQuantized(DType dtype) {
  return dtype == DType::I8 || dtype == DType::U8;
}

}  // namespace

void ValidateWeightMatrix(const WeightMatrix& w, std::string_view context) {
  if (IsQuantized(w.dtype)) return ValidateQuantWeight(w, context);
  if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F8_E4M3)
    Fail(context, ": weight dtype ", Name(w.dtype),
         " is not supported (expected F32, BF16, F8_E4M3, I8 or U8)");
  if (w.rows < 0 || w.cols < 0)
    Fail(context, ": weight shape [", w.rows, ", ", w.cols, "] has a negative dimension");
  if (w.rows * w.cols > 0 && w.data == nullptr) Fail(context, ": weight data is null");
  if (w.dtype == DType::F8_E4M3 && w.block_scales == nullptr && w.rows * w.cols > 0)
    Fail(context, ": F8_E4M3 weight [", w.rows, ", ", w.cols, "] has no block_scales");
  if (w.dtype != DType::F8_E4M3 && w.block_scales != nullptr)
    Fail(context, ": ", Name(w.dtype),
         " weight has block_scales (only F8_E4M3 weights are scaled)");
}

void ValidateMatMulArgs(std::span<float> y, std::span<const float> x, int64_t n,
                        const WeightMatrix& w, std::string_view context) {
  ValidateWeightMatrix(w, context);
  if (n < 0) Fail(context, ": n = ", n, " tokens is negative");
  if (static_cast<int64_t>(x.size()) != n * w.cols)
    Fail(context, ": x has ", x.size(), " elements, expected n * cols = ", n, " * ", w.cols);
  if (static_cast<int64_t>(y.size()) != n * w.rows)
    Fail(context, ": y has ", y.size(), " elements, expected n * rows = ", n, " * ", w.rows);
}

void MatMulRef(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w) {
  ValidateMatMulArgs(y, x, n, w, "MatMulRef");
  if (IsQuantized(w.dtype)) return MatMulQuantRef(y, x, n, w);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < w.rows; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < w.cols; ++j)
        sum += static_cast<double>(x[t * w.cols + j]) * DequantizedElement(w, i, j);
      y[t * w.rows + i] = static_cast<float>(sum);
    }
}

void DequantizeRows(std::span<float> out, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end) {
  ValidateWeightMatrix(w, "DequantizeRows");
  if (row_begin < 0 || row_begin > row_end || row_end > w.rows)
    Fail("DequantizeRows: rows [", row_begin, ", ", row_end, ") are not within [0, ", w.rows, ")");
  if (static_cast<int64_t>(out.size()) != (row_end - row_begin) * w.cols)
    Fail("DequantizeRows: out has ", out.size(), " elements, expected ", row_end - row_begin,
         " rows * ", w.cols, " cols");
  if (IsQuantized(w.dtype)) return DequantizeRowsQuant(out, w, row_begin, row_end);
  const size_t element_size = SizeOf(w.dtype);
  for (int64_t i = row_begin; i < row_end; ++i) {
    std::span<float> row = out.subspan((i - row_begin) * w.cols, w.cols);
    ConvertToF32(w.dtype, static_cast<const uint8_t*>(w.data) + i * w.cols * element_size, row);
    if (w.dtype != DType::F8_E4M3) continue;
    const float* scales = w.block_scales + (i / kWeightScaleBlock) * ScaleGridCols(w);
    for (int64_t j = 0; j < w.cols; ++j) row[j] *= scales[j / kWeightScaleBlock];
  }
}

void ValidateUntransposedArgs(std::span<float> y, std::span<const float> x, int64_t n,
                              const WeightMatrix& w, int64_t row_begin, int64_t row_end,
                              std::string_view context) {
  ValidateWeightMatrix(w, context);
  if (row_begin < 0 || row_end < row_begin || row_end > w.rows)
    Fail(context, ": rows [", row_begin, ", ", row_end, ") are not within [0, ", w.rows, ")");
  const int64_t rows = row_end - row_begin;
  if (n < 0 || static_cast<int64_t>(x.size()) != n * rows ||
      static_cast<int64_t>(y.size()) != n * w.cols)
    Fail(context, ": x has ", x.size(), " values and y ", y.size(), ", expected ", n, " x ", rows,
         " and ", n, " x ", w.cols);
}

void MatMulUntransposedRef(std::span<float> y, std::span<const float> x, int64_t n,
                           const WeightMatrix& w, int64_t row_begin, int64_t row_end) {
  ValidateUntransposedArgs(y, x, n, w, row_begin, row_end, "MatMulUntransposedRef");
  const int64_t rows = row_end - row_begin, cols = w.cols;
  std::vector<float> weights(static_cast<size_t>(rows * cols));  // [rows, cols]
  DequantizeRows(weights, w, row_begin, row_end);
  std::vector<double> acc(static_cast<size_t>(cols));  // [cols]
  for (int64_t t = 0; t < n; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        acc[j] += static_cast<double>(x[t * rows + i]) * static_cast<double>(weights[i * cols + j]);
    for (int64_t j = 0; j < cols; ++j) y[t * cols + j] = static_cast<float>(acc[j]);
  }
}

bool ViewRows(const WeightMatrix& w, int64_t begin, int64_t end, WeightMatrix* out) {
  ValidateWeightMatrix(w, "ViewRows");
  if (begin < 0 || begin > end || end > w.rows)
    Fail("ViewRows: rows [", begin, ", ", end, ") are not within [0, ", w.rows, ")");
  if (w.dtype == DType::F8_E4M3 && begin % kWeightScaleBlock != 0) return false;
  const bool block_quantized = w.dtype == DType::I8 || w.dtype == DType::U8;
  if (block_quantized && begin % kQuantRowBlock != 0) return false;
  WeightMatrix view = w;
  view.rows = end - begin;
  const auto* bytes = static_cast<const uint8_t*>(w.data);
  switch (w.dtype) {
    case DType::F8_E4M3:
      view.data = bytes + begin * w.cols;
      view.block_scales = w.block_scales + (begin / kWeightScaleBlock) * ScaleGridCols(w);
      break;
    case DType::I8:
    case DType::U8:
      // Whole row blocks (kernels/quant.h STORAGE); a partial last block of the view reads rows
      // of w past `end`, whose outputs the kernels never write.
      view.data =
          bytes + (begin / kQuantRowBlock) *
                      QuantBlockBytes(
                          w.dtype == DType::I8 ? QuantFormat::kInt8 : QuantFormat::kInt4, w.cols);
      break;
    default:
      view.data = bytes + begin * w.cols * static_cast<int64_t>(SizeOf(w.dtype));
      break;
  }
  *out = view;
  return true;
}

}  // namespace whale
