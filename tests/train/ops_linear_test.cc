// Linear layer and embedding: finite differences in double, float against double and against the
// inference MatMul, size errors.
#include "train/ops_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "kernels/matmul.h"
#include "ops_grad_check.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

template <typename T>
std::span<const T> C(const std::vector<T>& v) {
  return v;
}

TEST(OpsLinear, GradientsMatchFiniteDifferences) {
  std::mt19937 rng(1);
  for (auto shape : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {3, 5, 7}, {4, 33, 9}}) {
    // Plain variables: the loss lambda captures them (clang 14 cannot capture bindings).
    const int64_t n = std::get<0>(shape), in = std::get<1>(shape), out = std::get<2>(shape);
    SCOPED_TRACE(testing::Message() << n << "x" << in << "->" << out);
    std::vector<double> x = RandomDoubles(n * in, rng), w = RandomDoubles(out * in, rng);
    const std::vector<double> r = RandomDoubles(n * out, rng);
    std::vector<double> y(n * out);
    auto loss = [&] {
      LinearForward<double>(y, x, w, n, in, out, nullptr);
      return Project(y, r);
    };
    std::vector<double> dx(n * in, 0.0), dw(out * in, 0.5);
    LinearBackward<double>(dx, dw, r, x, w, n, in, out, false, nullptr);
    for (double& g : dw) g -= 0.5;  // dw accumulates (+=) onto what was there
    ExpectGradient(x, dx, loss, "dx");
    ExpectGradient(w, dw, loss, "dw");
    // accumulate_dx adds to dx.
    std::vector<double> dx2(n * in, 1.0);
    LinearBackward<double>(dx2, {}, r, x, w, n, in, out, true, nullptr);
    for (int64_t i = 0; i < n * in; ++i) EXPECT_NEAR(dx2[i], dx[i] + 1.0, 1e-12);
  }
}

// The float path (Gemm) against the double path over odd sizes. Each output is a dot of length
// L (in, out or n); F32 with FMA accumulates at most (L + 3)·2⁻²⁴·Σ|terms| of error (γ_L bound).
TEST(OpsLinear, FloatMatchesDouble) {
  std::mt19937 rng(2);
  ThreadPool pool(2);
  for (int64_t n : {1, 31, 129})
    for (int64_t in : {1, 32, 127})
      for (int64_t out : {1, 33, 128}) {
        SCOPED_TRACE(testing::Message() << n << "x" << in << "->" << out);
        const std::vector<double> xd = RandomDoubles(n * in, rng),
                                  wd = RandomDoubles(out * in, rng),
                                  dyd = RandomDoubles(n * out, rng);
        const std::vector<float> xf(xd.begin(), xd.end()), wf(wd.begin(), wd.end()),
            dyf(dyd.begin(), dyd.end());
        // The double path sees exactly the float inputs.
        const std::vector<double> x(xf.begin(), xf.end()), w(wf.begin(), wf.end()),
            dy(dyf.begin(), dyf.end());
        std::vector<double> y(n * out), dx(n * in), dw(out * in, 0.0);
        std::vector<float> yf(n * out), dxf(n * in), dwf(out * in, 0.0f);
        LinearForward<double>(y, x, w, n, in, out, nullptr);
        LinearForward<float>(yf, xf, wf, n, in, out, &pool);
        LinearBackward<double>(dx, dw, dy, x, w, n, in, out, false, nullptr);
        LinearBackward<float>(dxf, dwf, dyf, xf, wf, n, in, out, false, &pool);
        // Inputs are in [-1, 1], so Σ|terms| <= L.
        auto bound = [](int64_t l) { return (l + 3) * 0x1p-24 * l + 1e-30; };
        for (int64_t i = 0; i < n * out; ++i) ASSERT_NEAR(yf[i], y[i], bound(in));
        for (int64_t i = 0; i < n * in; ++i) ASSERT_NEAR(dxf[i], dx[i], bound(out));
        for (int64_t i = 0; i < out * in; ++i) ASSERT_NEAR(dwf[i], dw[i], bound(n));
      }
}

// The training forward against the inference kernel for an F32 weight: the same products in a
// different summation order, so within the γ_in bound of both (2·(in + 3)·2⁻²⁴·Σ|x·w|).
TEST(OpsLinear, FloatForwardMatchesInferenceMatMul) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  for (auto [n, in, out] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 129, 33}, {31, 256, 127}, {129, 33, 256}}) {
    const std::vector<double> xd = RandomDoubles(n * in, rng), wd = RandomDoubles(out * in, rng);
    const std::vector<float> x(xd.begin(), xd.end()), w(wd.begin(), wd.end());
    std::vector<float> y(n * out), expected(n * out);
    LinearForward<float>(y, x, w, n, in, out, &pool);
    MatMul(expected, x, n, WeightMatrix{DType::F32, w.data(), out, in}, &pool);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < out; ++o) {
        double magnitude = 0;
        for (int64_t i = 0; i < in; ++i) magnitude += std::fabs(x[t * in + i] * w[o * in + i]);
        ASSERT_NEAR(y[t * out + o], expected[t * out + o],
                    2.0 * (in + 3) * 0x1p-24 * magnitude + 1e-30);
      }
  }
}

TEST(OpsLinear, EmbeddingGradientScattersAndAdds) {
  std::mt19937 rng(4);
  const int64_t vocab = 7, dim = 5;
  const std::vector<int32_t> ids = {3, 0, 3, 6, 3};
  std::vector<double> table = RandomDoubles(vocab * dim, rng);
  const std::vector<double> r = RandomDoubles(ids.size() * dim, rng);
  std::vector<double> out(ids.size() * dim);
  auto loss = [&] {
    EmbeddingForward<double>(out, ids, table, vocab, dim);
    return Project(out, r);
  };
  loss();
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t i = 0; i < dim; ++i) EXPECT_EQ(out[t * dim + i], table[ids[t] * dim + i]);
  std::vector<double> dtable(vocab * dim, 0.0);
  EmbeddingBackward<double>(dtable, r, ids, vocab, dim);
  ExpectGradient(table, dtable, loss, "dtable");
  EXPECT_EQ(dtable[1 * dim], 0.0);  // unused rows get nothing
}

TEST(OpsLinear, RejectsBadSizesAndIds) {
  std::vector<float> y(6), x(6), w(6);
  EXPECT_THROW(LinearForward<float>(y, x, w, 2, 3, 3, nullptr), Error);  // w needs 9
  EXPECT_THROW(LinearBackward<float>(x, w, y, x, w, 2, 3, 2, false, nullptr), Error);
  std::vector<float> table(12), out(4);
  const std::vector<int32_t> bad = {0, 3};
  EXPECT_THROW(EmbeddingForward<float>(out, bad, table, 3, 2), Error);
  const std::vector<int32_t> negative = {-1, 0};
  EXPECT_THROW(EmbeddingBackward<float>(table, C(out), negative, 6, 2), Error);
  try {
    EmbeddingForward<float>(out, bad, table, 7, 2);  // table needs 14
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("table"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace whale
