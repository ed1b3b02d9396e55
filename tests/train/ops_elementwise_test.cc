// RMSNorm, RoPE and SwiGLU: finite differences in double; the float forwards are the inference
// kernels (checked bit for bit); size errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/activation.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "ops_grad_check.h"
#include "tensor/dtype.h"
#include "train/ops_norm.h"
#include "train/ops_rope.h"
#include "train/ops_swiglu.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

TEST(OpsNorm, GradientsMatchFiniteDifferences) {
  std::mt19937 rng(5);
  for (auto shape : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {2, 33}}) {
    const int64_t n = shape.first, dim = shape.second;  // captured by the loss lambda
    SCOPED_TRACE(testing::Message() << n << "x" << dim);
    std::vector<double> x = RandomDoubles(n * dim, rng), w = RandomDoubles(dim, rng, 0.5, 1.5);
    const std::vector<double> r = RandomDoubles(n * dim, rng);
    const double eps = 1e-6;
    std::vector<double> y(n * dim), rstd(n);
    auto loss = [&] {
      RmsNormForward<double>(y, rstd, x, w, n, dim, eps);
      return Project(y, r);
    };
    loss();
    std::vector<double> dx(n * dim), dw(dim, 0.0);
    RmsNormBackward<double>(dx, dw, r, x, w, rstd, n, dim, false);
    ExpectGradient(x, dx, loss, "dx");
    ExpectGradient(w, dw, loss, "dweight");
    std::vector<double> dx2(n * dim, 2.0);
    RmsNormBackward<double>(dx2, {}, r, x, w, rstd, n, dim, true);
    for (int64_t i = 0; i < n * dim; ++i) EXPECT_NEAR(dx2[i], dx[i] + 2.0, 1e-12);
  }
}

TEST(OpsNorm, FloatForwardIsTheInferenceKernel) {
  std::mt19937 rng(6);
  for (int64_t dim : {1, 31, 32, 33, 127, 129}) {
    const int64_t n = 3;
    const std::vector<double> xd = RandomDoubles(n * dim, rng), wd = RandomDoubles(dim, rng);
    const std::vector<float> x(xd.begin(), xd.end()), w(wd.begin(), wd.end());
    std::vector<float> y(n * dim), rstd(n), expected(n * dim);
    RmsNormForward<float>(y, rstd, x, w, n, dim, 1e-6);
    RmsNorm(expected, x, n, dim, DType::F32, w.data(), 1e-6f);
    EXPECT_EQ(y, expected);
    for (int64_t t = 0; t < n; ++t) {
      double sum = 0;
      for (int64_t i = 0; i < dim; ++i) sum += double{x[t * dim + i]} * x[t * dim + i];
      // rstd is computed in double and rounded once: within half an F32 ulp (2⁻²⁴ relative).
      const double exact = 1 / std::sqrt(sum / dim + 1e-6);
      EXPECT_NEAR(rstd[t], exact, exact * 0x1p-24);
    }
  }
}

TEST(OpsRope, GradientMatchesFiniteDifferencesAndInverts) {
  std::mt19937 rng(7);
  const int64_t n = 4, heads = 3, head_dim = 10, offset = 4, rope_dim = 6;
  const std::vector<float> inv_freq = YarnInverseFrequencies(rope_dim, 10000.0, 4.0, 16, 32, 1);
  const std::vector<int32_t> positions = {0, 1, 7, 3};
  std::vector<double> x = RandomDoubles(n * heads * head_dim, rng);
  const std::vector<double> r = RandomDoubles(x.size(), rng);
  std::vector<double> y(x.size());
  auto loss = [&] {
    y = x;
    RopeForward<double>(y, positions, n, heads, head_dim, offset, rope_dim, inv_freq);
    return Project(y, r);
  };
  loss();
  // Channels outside [offset, offset + rope_dim) and position 0 are left alone.
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t c = 0; c < head_dim; ++c) {
      EXPECT_EQ(y[h * head_dim + c], x[h * head_dim + c]);
      if (c < offset) {
        EXPECT_EQ(y[(2 * heads + h) * head_dim + c], x[(2 * heads + h) * head_dim + c]);
      }
    }
  std::vector<double> dx = r;
  RopeBackward<double>(dx, positions, n, heads, head_dim, offset, rope_dim, inv_freq);
  ExpectGradient(x, dx, loss, "dx");
  // The backward of a rotation is its inverse: rotating y back gives x.
  loss();
  RopeBackward<double>(y, positions, n, heads, head_dim, offset, rope_dim, inv_freq);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-14);
}

TEST(OpsRope, FloatForwardIsTheInferenceKernel) {
  std::mt19937 rng(8);
  const int64_t n = 3, heads = 2, head_dim = 12, offset = 4, rope_dim = 8;
  const std::vector<float> inv_freq = YarnInverseFrequencies(rope_dim, 10000.0, 1.0, 0, 0, 0);
  const std::vector<int32_t> positions = {5, 0, 1000};
  const std::vector<double> xd = RandomDoubles(n * heads * head_dim, rng);
  std::vector<float> x(xd.begin(), xd.end()), expected = x;
  RopeForward<float>(x, positions, n, heads, head_dim, offset, rope_dim, inv_freq);
  for (int64_t t = 0; t < n; ++t)
    ApplyRope(std::span<float>(expected).subspan(t * heads * head_dim + offset), heads, head_dim,
              rope_dim, positions[t], inv_freq);
  EXPECT_EQ(x, expected);
}

TEST(OpsRope, RejectsBadLayout) {
  std::vector<float> x(24);
  const std::vector<float> inv_freq(2, 1.0f);
  const std::vector<int32_t> positions = {0, 1};
  EXPECT_THROW(RopeForward<float>(x, positions, 2, 2, 6, 4, 4, inv_freq), Error);  // 4 + 4 > 6
  EXPECT_THROW(RopeForward<float>(x, positions, 2, 2, 5, 0, 4, inv_freq), Error);  // x size
  const std::vector<int32_t> negative = {0, -1};
  EXPECT_THROW(RopeBackward<float>(x, negative, 2, 2, 6, 0, 4, inv_freq), Error);
}

TEST(OpsSwiglu, GradientsMatchFiniteDifferences) {
  std::mt19937 rng(9);
  const int64_t n = 33;
  std::vector<double> gate = RandomDoubles(n, rng, -6, 6), up = RandomDoubles(n, rng);
  const std::vector<double> r = RandomDoubles(n, rng);
  std::vector<double> out(n);
  auto loss = [&] {
    SwigluForward<double>(out, gate, up);
    return Project(out, r);
  };
  std::vector<double> dgate(n), dup(n);
  SwigluBackward<double>(dgate, dup, r, gate, up);
  ExpectGradient(gate, dgate, loss, "dgate");
  ExpectGradient(up, dup, loss, "dup");
}

TEST(OpsSwiglu, FloatForwardIsTheInferenceKernelAndBackwardMatchesDouble) {
  std::mt19937 rng(10);
  const int64_t n = 129;
  const std::vector<double> gd = RandomDoubles(n, rng, -8, 8), ud = RandomDoubles(n, rng),
                            dd = RandomDoubles(n, rng);
  const std::vector<float> g(gd.begin(), gd.end()), u(ud.begin(), ud.end()),
      d(dd.begin(), dd.end());
  std::vector<float> out(n), expected(n), dg(n), du(n);
  SwigluForward<float>(out, g, u);
  SiluMul(expected, g, u);
  EXPECT_EQ(out, expected);
  SwigluBackward<float>(dg, du, d, g, u);
  const std::vector<double> gx(g.begin(), g.end()), ux(u.begin(), u.end()), dx(d.begin(), d.end());
  std::vector<double> dgx(n), dux(n);
  SwigluBackward<double>(dgx, dux, dx, gx, ux);
  // A handful of F32 operations (exp, divide, 4 products): within 16 ulps of the magnitudes of
  // the terms (1 + g(1 − σ) cancels near g ≈ −1.28, so not of the result).
  for (int64_t i = 0; i < n; ++i) {
    const double sigma = 1 / (1 + std::exp(-gx[i]));
    const double terms = std::fabs(dx[i] * ux[i]) * sigma * (1 + std::fabs(gx[i]) * (1 - sigma));
    EXPECT_NEAR(dg[i], dgx[i], 16 * 0x1p-24 * terms + 1e-37);
    EXPECT_NEAR(du[i], dux[i], 16 * 0x1p-24 * std::fabs(dux[i]) + 1e-37);
  }
  std::vector<float> short_out(n - 1);
  EXPECT_THROW(SwigluForward<float>(short_out, g, u), Error);
}

// Row-parallel norms and SwiGLU: the same bits on 1 and 3 threads, over sizes that leave a
// partial last chunk (RMSNorm's dweight is summed per 64 rows, then in chunk order).
TEST(OpsThreads, NormAndSwigluDoNotDependOnThreadCount) {
  std::mt19937 rng(12);
  const int64_t n = 203, dim = 33, elements = 40001;
  const auto floats = [&](int64_t count) {
    const std::vector<double> d = RandomDoubles(count, rng);
    return std::vector<float>(d.begin(), d.end());
  };
  const std::vector<float> x = floats(n * dim), w = floats(dim), dy = floats(n * dim);
  const std::vector<float> g = floats(elements), u = floats(elements), d = floats(elements);
  ThreadPool three(3);
  std::vector<std::vector<float>> results[2];
  for (int run = 0; run < 2; ++run) {
    ThreadPool* pool = run == 0 ? nullptr : &three;
    std::vector<float> y(n * dim), rstd(n), dx(n * dim, 0.5f), dw(dim, 0.25f);
    RmsNormForward<float>(y, rstd, x, w, n, dim, 1e-6, pool);
    RmsNormBackward<float>(dx, dw, dy, x, w, rstd, n, dim, true, pool);
    std::vector<float> out(elements), dg(elements), du(elements);
    SwigluForward<float>(out, g, u, pool);
    SwigluBackward<float>(dg, du, d, g, u, pool);
    results[run] = {y, rstd, dx, dw, out, dg, du};
  }
  for (size_t i = 0; i < results[0].size(); ++i) EXPECT_EQ(results[0][i], results[1][i]) << i;
}

}  // namespace
}  // namespace whale
