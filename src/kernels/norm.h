// RMSNorm (spec 4.2): y = x / sqrt(mean(x²) + eps) * w, in F32.
#pragma once

#include <cstdint>
#include <span>

#include "tensor/dtype.h"

namespace whale {

// out[n, dim] = RMSNorm of each row of x[n, dim] with weight[dim] (F32 or BF16). Computed in F32:
// r = 1 / sqrt(Σx² / dim + eps), then out = (x · r) · w. out may be x itself (in place).
// Throws whale::Error on a weight dtype other than F32/BF16 or mismatched sizes.
void RmsNorm(std::span<float> out, std::span<const float> x, int64_t n, int64_t dim,
             DType weight_dtype, const void* weight, float eps);

// The reference: the sum of squares, the scale and the products in double, one rounding.
void RmsNormRef(std::span<float> out, std::span<const float> x, int64_t n, int64_t dim,
                DType weight_dtype, const void* weight, float eps);

}  // namespace whale
