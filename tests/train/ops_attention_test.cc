// Causal attention with segments: finite differences in double, against a direct reference
// (explicit masked softmax), float against double.
#include "train/ops_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops_grad_check.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

// out = softmax(scale·q·kᵀ + mask)·v written the obvious way, one (seq, head, query) at a time.
std::vector<double> ReferenceAttention(const std::vector<double>& q, const std::vector<double>& k,
                                       const std::vector<double>& v,
                                       const std::vector<int32_t>& segments,
                                       const AttentionShape& s) {
  std::vector<double> out(s.n_seqs * s.seq_len * s.heads * s.v_dim, 0.0);
  for (int64_t seq = 0; seq < s.n_seqs; ++seq)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seq_len; ++t) {
        const int64_t qi = seq * s.seq_len + t;
        std::vector<double> p(s.seq_len, 0.0);
        double sum = 0;
        for (int64_t j = 0; j < s.seq_len; ++j) {
          const int64_t kj = seq * s.seq_len + j;
          if (j > t || segments[kj] != segments[qi]) continue;
          double z = 0;
          for (int64_t c = 0; c < s.qk_dim; ++c)
            z += q[(qi * s.heads + h) * s.qk_dim + c] * k[(kj * s.heads + h) * s.qk_dim + c];
          p[j] = std::exp(s.scale * z);
          sum += p[j];
        }
        for (int64_t j = 0; j < s.seq_len; ++j)
          for (int64_t c = 0; c < s.v_dim; ++c)
            out[(qi * s.heads + h) * s.v_dim + c] +=
                p[j] / sum * v[((seq * s.seq_len + j) * s.heads + h) * s.v_dim + c];
      }
  return out;
}

TEST(OpsAttention, ForwardMatchesReferenceAndGradientsMatchFiniteDifferences) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  // Two sequences; the first holds three documents (one of a single token), the second one.
  const AttentionShape s{2, 6, 2, 5, 3, 1.0 / std::sqrt(5.0) * 1.3};
  const std::vector<int32_t> segments = {0, 0, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0};
  const int64_t rows = s.n_seqs * s.seq_len;
  std::vector<double> q = RandomDoubles(rows * s.heads * s.qk_dim, rng, -2, 2),
                      k = RandomDoubles(rows * s.heads * s.qk_dim, rng, -2, 2),
                      v = RandomDoubles(rows * s.heads * s.v_dim, rng);
  const std::vector<double> r = RandomDoubles(rows * s.heads * s.v_dim, rng);
  std::vector<double> out(r.size()), lse(rows * s.heads);
  auto loss = [&] {
    AttentionForward<double>(out, lse, q, k, v, segments, s, &pool);
    return Project(out, r);
  };
  loss();
  const std::vector<double> expected = ReferenceAttention(q, k, v, segments, s);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], expected[i], 1e-13) << i;
  // Token 2 of sequence 0 is a one-token document: it sees only its own value.
  for (int64_t h = 0; h < s.heads; ++h)
    for (int64_t c = 0; c < s.v_dim; ++c)
      EXPECT_NEAR(out[(2 * s.heads + h) * s.v_dim + c], v[(2 * s.heads + h) * s.v_dim + c], 1e-15);
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  AttentionBackward<double>(dq, dk, dv, r, q, k, v, out, lse, segments, s, &pool);
  ExpectGradient(q, dq, loss, "dq");
  ExpectGradient(k, dk, loss, "dk");
  ExpectGradient(v, dv, loss, "dv");
}

// Float against double on a longer sequence (segments of odd lengths). Softmax-weighted averages
// of O(1) values with F32 dot products of length ≤ 33: errors of a few hundred ulps at most.
TEST(OpsAttention, FloatMatchesDouble) {
  std::mt19937 rng(12);
  ThreadPool pool(2);
  const AttentionShape s{2, 129, 3, 33, 31, 1.0 / std::sqrt(33.0)};
  const int64_t rows = s.n_seqs * s.seq_len;
  std::vector<int32_t> segments(rows);
  for (int64_t i = 0; i < rows; ++i) segments[i] = static_cast<int32_t>((i % s.seq_len) / 50);
  auto as_float = [](const std::vector<double>& d) {
    return std::vector<float>(d.begin(), d.end());
  };
  auto as_double = [](const std::vector<float>& f) {
    return std::vector<double>(f.begin(), f.end());
  };
  const std::vector<float> qf = as_float(RandomDoubles(rows * s.heads * s.qk_dim, rng)),
                           kf = as_float(RandomDoubles(rows * s.heads * s.qk_dim, rng)),
                           vf = as_float(RandomDoubles(rows * s.heads * s.v_dim, rng)),
                           df = as_float(RandomDoubles(rows * s.heads * s.v_dim, rng));
  const std::vector<double> q = as_double(qf), k = as_double(kf), v = as_double(vf),
                            d = as_double(df);
  std::vector<float> outf(vf.size()), lsef(rows * s.heads), dqf(qf.size()), dkf(kf.size()),
      dvf(vf.size());
  std::vector<double> out(v.size()), lse(rows * s.heads), dq(q.size()), dk(k.size()), dv(v.size());
  AttentionForward<float>(outf, lsef, qf, kf, vf, segments, s, &pool);
  AttentionForward<double>(out, lse, q, k, v, segments, s, nullptr);
  AttentionBackward<float>(dqf, dkf, dvf, df, qf, kf, vf, outf, lsef, segments, s, &pool);
  AttentionBackward<double>(dq, dk, dv, d, q, k, v, out, lse, segments, s, nullptr);
  const double tolerance = 1e-5;  // ≈ 170 ulps of an O(1) value
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(outf[i], out[i], tolerance) << i;
  for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lsef[i], lse[i], tolerance) << i;
  for (size_t i = 0; i < dq.size(); ++i) ASSERT_NEAR(dqf[i], dq[i], tolerance) << i;
  for (size_t i = 0; i < dk.size(); ++i) ASSERT_NEAR(dkf[i], dk[i], tolerance) << i;
  for (size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dvf[i], dv[i], tolerance) << i;
}

TEST(OpsAttention, RejectsBadSizes) {
  const AttentionShape s{1, 4, 2, 3, 3, 1.0};
  std::vector<float> q(24), out(24), lse(8);
  const std::vector<int32_t> segments(3, 0);  // needs 4
  EXPECT_THROW(AttentionForward<float>(out, lse, q, q, q, segments, s, nullptr), Error);
  const std::vector<int32_t> ok(4, 0);
  std::vector<float> short_lse(7);
  EXPECT_THROW(AttentionForward<float>(out, short_lse, q, q, q, ok, s, nullptr), Error);
}

}  // namespace
}  // namespace whale
