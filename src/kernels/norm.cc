#include "kernels/norm.h"

#include <bit>
#include <cmath>

#include "util/error.h"

namespace whale {
namespace {

// Independent partial sums of squares: vectorizes without reassociating additions.
constexpr int kLanes = 16;

void CheckNormArgs(std::span<float> out, std::span<const float> x, int64_t n, int64_t dim,
                   DType weight_dtype, const void* weight, const char* kernel) {
  if (weight_dtype != DType::F32 && weight_dtype != DType::BF16)
    Fail(kernel, ": weight dtype ", Name(weight_dtype), " is not supported (expected F32 or BF16)");
  if (n < 0 || dim <= 0) Fail(kernel, ": shape [", n, ", ", dim, "] is invalid (dim must be > 0)");
  if (weight == nullptr) Fail(kernel, ": weight is null");
  if (static_cast<int64_t>(x.size()) != n * dim)
    Fail(kernel, ": x has ", x.size(), " elements, expected n * dim = ", n, " * ", dim);
  if (static_cast<int64_t>(out.size()) != n * dim)
    Fail(kernel, ": out has ", out.size(), " elements, expected n * dim = ", n, " * ", dim);
}

float WeightAt(DType dtype, const void* weight, int64_t i) {
  return dtype == DType::F32 ? static_cast<const float*>(weight)[i]
                             : Bf16ToF32(static_cast<const uint16_t*>(weight)[i]);
}

template <typename Storage, typename Decode>
void NormalizeRows(float* out, const float* x, int64_t n, int64_t dim, const Storage* weight,
                   Decode decode, float eps) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * dim;
    float* yt = out + t * dim;
    float lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= dim; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += xt[i + l] * xt[i + l];
    for (int l = 0; i + l < dim; ++l) lanes[l] += xt[i + l] * xt[i + l];
    float sum = 0.0f;
    for (int l = 0; l < kLanes; ++l) sum += lanes[l];
    const float scale = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    for (int64_t j = 0; j < dim; ++j) yt[j] = (xt[j] * scale) * decode(weight[j]);
  }
}

}  // namespace

void RmsNorm(std::span<float> out, std::span<const float> x, int64_t n, int64_t dim,
             DType weight_dtype, const void* weight, float eps) {
  CheckNormArgs(out, x, n, dim, weight_dtype, weight, "RmsNorm");
  if (weight_dtype == DType::F32) {
    NormalizeRows(
        out.data(), x.data(), n, dim, static_cast<const float*>(weight), [](float v) { return v; },
        eps);
  } else {
    NormalizeRows(
        out.data(), x.data(), n, dim, static_cast<const uint16_t*>(weight),
        [](uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }, eps);
  }
}

void RmsNormRef(std::span<float> out, std::span<const float> x, int64_t n, int64_t dim,
                DType weight_dtype, const void* weight, float eps) {
  CheckNormArgs(out, x, n, dim, weight_dtype, weight, "RmsNormRef");
  for (int64_t t = 0; t < n; ++t) {
    double sum = 0.0;
    for (int64_t j = 0; j < dim; ++j) sum += static_cast<double>(x[t * dim + j]) * x[t * dim + j];
    const double scale = 1.0 / std::sqrt(sum / static_cast<double>(dim) + eps);
    for (int64_t j = 0; j < dim; ++j)
      out[t * dim + j] =
          static_cast<float>(x[t * dim + j] * scale * WeightAt(weight_dtype, weight, j));
  }
}

}  // namespace whale
