// The softmax, SwiGLU and sigmoid kernels for every Highway target (foreach_target), chosen at
// run time. e^x is Highway's polynomial (within 1 ulp of the true value for inputs in
// [−104, 88.7]; 0 below −104). Inputs outside that range never reach it with a wrong answer:
// the softmax exponentiates x − max ≤ 0, SwiGLU and the sigmoid clamp e^−g's argument at 88.8,
// where it is already +inf in F32, so g / (1 + e^−g) goes to −0 as in the scalar reference.
// A row's tail (fewer elements than a vector) goes through the same vector code via a padded
// copy, so every element of every row sees the same arithmetic.
#include "kernels/activation_simd.h"

#include "kernels/simd_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/activation_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
// After highway.h, once per target (clang-format off keeps it there).
// clang-format off
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#include <algorithm>
#include <cmath>
#include <limits>

HWY_BEFORE_NAMESPACE();
namespace whale {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// e^88.8 overflows F32 to +inf, as e^x does for every larger x.
constexpr float kExpOverflowArgument = 88.8f;

// Calls body(v) -> result for each full vector of `in` and for the tail padded with `pad`,
// storing each result to `out` (which may alias `in`; nullptr: a read-only pass, no stores).
template <class Body>
HWY_INLINE void ForEachVector(const float* in, float* out, size_t n, float pad, Body&& body) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF result = body(hn::LoadU(df, in + i));
    if (out != nullptr) hn::StoreU(result, df, out + i);
  }
  if (i < n) {
    HWY_ALIGN float tail[hn::MaxLanes(df)];
    std::fill(tail, tail + lanes, pad);
    std::copy(in + i, in + n, tail);
    hn::Store(body(hn::Load(df, tail)), df, tail);
    if (out != nullptr) std::copy(tail, tail + (n - i), out + i);
  }
}

}  // namespace

bool SoftmaxImpl(float* x, size_t n) {
  const DF df;
  // The maximum, and whether any entry is NaN.
  VF max = hn::Set(df, -std::numeric_limits<float>::infinity());
  auto nan = hn::IsNaN(max);
  ForEachVector(x, nullptr, n, -std::numeric_limits<float>::infinity(), [&](VF v) {
    nan = hn::Or(nan, hn::IsNaN(v));
    max = hn::Max(max, v);
    return v;
  });
  const float row_max = hn::GetLane(hn::MaxOfLanes(df, max));
  if (!hn::AllFalse(df, nan) || !std::isfinite(row_max)) return false;

  // e^(x − max) and their sum: one vector of partial sums; the padding adds e^−inf = 0.
  const VF shift = hn::Set(df, row_max);
  VF sum = hn::Zero(df);
  ForEachVector(x, x, n, -std::numeric_limits<float>::infinity(), [&](VF v) {
    const VF e = hn::Exp(df, hn::Sub(v, shift));
    sum = hn::Add(sum, e);
    return e;
  });
  const VF inverse = hn::Div(hn::Set(df, 1.0f), hn::SumOfLanes(df, sum));
  ForEachVector(x, x, n, 0.0f, [&](VF v) { return hn::Mul(v, inverse); });
  return true;
}

void SiluMulImpl(float* out, const float* gate, const float* up, size_t n) {
  const DF df;
  const VF one = hn::Set(df, 1.0f), limit = hn::Set(df, kExpOverflowArgument);
  size_t i = 0;
  const size_t lanes = hn::Lanes(df);
  auto silu = [&](VF g) {
    const VF e = hn::Exp(df, hn::Min(hn::Neg(g), limit));  // e^−g
    return hn::Div(g, hn::Add(one, e));
  };
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Mul(silu(hn::LoadU(df, gate + i)), hn::LoadU(df, up + i)), df, out + i);
  if (i < n) {
    HWY_ALIGN float g[hn::MaxLanes(df)] = {};
    HWY_ALIGN float u[hn::MaxLanes(df)] = {};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    hn::Store(hn::Mul(silu(hn::Load(df, g)), hn::Load(df, u)), df, g);
    std::copy(g, g + (n - i), out + i);
  }
}

void SigmoidImpl(float* out, const float* x, size_t n) {
  const DF df;
  const VF one = hn::Set(df, 1.0f), limit = hn::Set(df, kExpOverflowArgument);
  ForEachVector(x, out, n, 0.0f, [&](VF v) {
    const VF sigmoid = hn::Div(one, hn::Add(one, hn::Exp(df, hn::Min(hn::Neg(v), limit))));
    return hn::IfThenElse(hn::IsNaN(v), v, sigmoid);  // Min may drop a NaN
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace whale
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(SigmoidImpl);

bool SoftmaxSimd(float* x, size_t n) {
  return HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n);
}

void SiluMulSimd(float* out, const float* gate, const float* up, size_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(out, gate, up, n);
}

void SigmoidSimd(float* out, const float* x, size_t n) {
  HWY_DYNAMIC_DISPATCH(SigmoidImpl)(out, x, n);
}

}  // namespace whale
#endif  // HWY_ONCE
