// The scalar references of quant_matmul.h.
#include <vector>

#include "kernels/quant.h"
#include "kernels/quant_matmul.h"
#include "util/error.h"

namespace whale {
namespace {

QuantFormat FormatOf(const WeightMatrix& w) {
  return w.dtype == DType::I8 ? QuantFormat::kInt8 : QuantFormat::kInt4;
}

}  // namespace

void DequantizeRowsQuant(std::span<float> out, const WeightMatrix& w, int64_t row_begin,
                         int64_t row_end) {
  ValidateQuantWeight(w, "DequantizeRowsQuant");
  if (row_begin < 0 || row_end < row_begin || row_end > w.rows)
    Fail("DequantizeRowsQuant: row range [", row_begin, ", ", row_end, ") outside [0, ", w.rows,
         ")");
  if (static_cast<int64_t>(out.size()) != (row_end - row_begin) * w.cols)
    Fail("DequantizeRowsQuant: output has ", out.size(), " values, expected ",
         (row_end - row_begin) * w.cols);
  if (row_end == row_begin || w.cols == 0) return;
  DequantizeCodes(FormatOf(w), out, static_cast<const uint8_t*>(w.data), w.cols, row_begin,
                  row_end);
}

void MatMulQuantRef(std::span<float> y, std::span<const float> x, int64_t n,
                    const WeightMatrix& w) {
  ValidateQuantWeight(w, "MatMulQuantRef");
  const int64_t rows = w.rows, cols = w.cols;
  if (n < 0 || static_cast<int64_t>(x.size()) != n * cols ||
      static_cast<int64_t>(y.size()) != n * rows)
    Fail("MatMulQuantRef: x has ", x.size(), " values and y ", y.size(), ", expected ", n, " x ",
         cols, " and ", n, " x ", rows);
  const int64_t groups = QuantGroups(cols);
  std::vector<float> weights(static_cast<size_t>(rows * cols));  // [rows, cols]
  DequantizeRowsQuant(weights, w, 0, rows);
  std::vector<int8_t> q(static_cast<size_t>(groups * kQuantGroup));  // [groups * 32]
  std::vector<float> d(static_cast<size_t>(groups));                 // [groups]
  std::vector<int32_t> sum(static_cast<size_t>(groups));             // [groups]
  std::vector<double> a(static_cast<size_t>(cols));                  // [cols]
  for (int64_t t = 0; t < n; ++t) {
    if (cols > 0) QuantizeActivationRow(q.data(), d.data(), sum.data(), x.data() + t * cols, cols);
    for (int64_t k = 0; k < cols; ++k)
      a[k] = static_cast<double>(q[k]) * static_cast<double>(d[k / kQuantGroup]);
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t k = 0; k < cols; ++k) acc += static_cast<double>(weights[r * cols + k]) * a[k];
      y[t * rows + r] = static_cast<float>(acc);
    }
  }
}

}  // namespace whale
