#include "train/ops_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/gemm.h"
#include "train/ops_check.h"
#include "train/ops_math.h"

namespace whale {
namespace {

void CheckAttentionArgs(std::string_view op, const AttentionShape& s,
                        std::span<const int32_t> segments) {
  CheckNonNegative(op, "n_seqs", s.n_seqs);
  CheckNonNegative(op, "seq_len", s.seq_len);
  CheckNonNegative(op, "heads", s.heads);
  CheckNonNegative(op, "qk_dim", s.qk_dim);
  CheckNonNegative(op, "v_dim", s.v_dim);
  if (!std::isfinite(s.scale)) Fail(op, ": scale = ", s.scale, "; expected a finite number");
  CheckSpan(op, "segments", segments, s.n_seqs * s.seq_len);
}

std::span<const float> C(std::span<float> x) {
  return x;
}

template <typename T>
T Dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Runs body(seq, head, worker) for every (sequence, head) pair, in parallel when a pool is given.
template <typename Body>
void ForEachSeqHead(const AttentionShape& s, ThreadPool* pool, const Body& body) {
  const int64_t pairs = s.n_seqs * s.heads;
  if (pool == nullptr || pool->size() == 1 || pairs <= 1) {
    for (int64_t p = 0; p < pairs; ++p) body(p / s.heads, p % s.heads, 0);
    return;
  }
  pool->ParallelFor(static_cast<size_t>(pairs), 1, [&](size_t begin, size_t end, int worker) {
    for (size_t p = begin; p < end; ++p)
      body(static_cast<int64_t>(p) / s.heads, static_cast<int64_t>(p) % s.heads, worker);
  });
}

// The F32 path: per (sequence, head), the head's rows are gathered into contiguous [seq_len, dim]
// matrices and the products are Gemm calls (single-threaded inside the parallel loop). Queries go
// in blocks of kQueryBlock rows; a block's queries see only keys [0, block end), so the products
// cover the causal lower triangle in kQueryBlock-wide steps instead of the full square. Per block:
// scores S = Q_b·K[0:end]ᵀ, P = masked softmax, O_b = P·V[0:end]; the backward recomputes P from
// the saved log-sum-exp, and dK, dV add each block's Sᵀ-side products in ascending block order.
constexpr int64_t kQueryBlock = 64;

struct HeadScratch {
  std::vector<float> q, k, v, o, d_o;  // [seq_len, qk_dim or v_dim]
  std::vector<float> p, dp;            // [kQueryBlock, seq_len] one block's rows of P and dP
  std::vector<float> dq, dk, dv;       // [seq_len, qk_dim or v_dim]
};

HeadScratch& ThreadHeadScratch() {
  thread_local HeadScratch scratch;
  return scratch;
}

std::span<float> Sized(std::vector<float>& v, int64_t size) {
  if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  return std::span<float>(v.data(), static_cast<size_t>(size));
}

// Rows [first, first + count) of a [rows, dim] matrix.
std::span<const float> Rows(std::span<const float> x, int64_t first, int64_t count, int64_t dim) {
  return x.subspan(static_cast<size_t>(first * dim), static_cast<size_t>(count * dim));
}
std::span<float> Rows(std::span<float> x, int64_t first, int64_t count, int64_t dim) {
  return x.subspan(static_cast<size_t>(first * dim), static_cast<size_t>(count * dim));
}

// dst[seq_len, dim] = rows [first, first + seq_len) of head h of src[rows, heads, dim].
void Gather(std::span<float> dst, std::span<const float> src, int64_t first, int64_t seq_len,
            int64_t heads, int64_t h, int64_t dim) {
  for (int64_t t = 0; t < seq_len; ++t)
    std::copy_n(src.data() + ((first + t) * heads + h) * dim, dim, dst.data() + t * dim);
}

void Scatter(std::span<float> dst, std::span<const float> src, int64_t first, int64_t seq_len,
             int64_t heads, int64_t h, int64_t dim) {
  for (int64_t t = 0; t < seq_len; ++t)
    std::copy_n(src.data() + t * dim, dim, dst.data() + ((first + t) * heads + h) * dim);
}

void ForwardF32(std::span<float> out, std::span<float> lse, std::span<const float> q,
                std::span<const float> k, std::span<const float> v,
                std::span<const int32_t> segments, const AttentionShape& s, ThreadPool* pool) {
  const int64_t len = s.seq_len, qk = s.qk_dim, dv = s.v_dim;
  const float scale = static_cast<float>(s.scale);
  ForEachSeqHead(s, pool, [&](int64_t seq, int64_t h, int) {
    HeadScratch& w = ThreadHeadScratch();
    const int64_t first = seq * len;
    const std::span<float> qh = Sized(w.q, len * qk), kh = Sized(w.k, len * qk),
                           vh = Sized(w.v, len * dv), oh = Sized(w.o, len * dv);
    Gather(qh, q, first, len, s.heads, h, qk);
    Gather(kh, k, first, len, s.heads, h, qk);
    Gather(vh, v, first, len, s.heads, h, dv);
    const int32_t* seg = segments.data() + first;
    for (int64_t t0 = 0; t0 < len; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, len - t0), end = t0 + rows;
      const std::span<float> p = Sized(w.p, rows * end);  // [rows, end]
      Gemm(p, Rows(C(qh), t0, rows, qk), Rows(C(kh), 0, end, qk), rows, end, qk, Trans::kNo,
           Trans::kYes, false, nullptr);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r;
        float* row = p.data() + r * end;
        const int32_t own = seg[t];
        for (int64_t j = 0; j <= t; ++j)
          row[j] = seg[j] == own ? scale * row[j] : -std::numeric_limits<float>::infinity();
        const float max = MaxF32(row, t + 1);  // finite: the query attends to itself
        for (int64_t j = 0; j <= t; ++j) row[j] = FastExp(row[j] - max);  // e^−inf = 0
        std::fill(row + t + 1, row + end, 0.0f);
        // The query attends at least to itself, so sum >= 1.
        const float sum = SumF32(row, t + 1);
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j <= t; ++j) row[j] *= inv;
        lse[(first + t) * s.heads + h] = max + std::log(sum);
      }
      Gemm(Rows(oh, t0, rows, dv), C(p), Rows(C(vh), 0, end, dv), rows, dv, end, Trans::kNo,
           Trans::kNo, false, nullptr);
    }
    Scatter(out, oh, first, len, s.heads, h, dv);
  });
}

void BackwardF32(std::span<float> dq, std::span<float> dk, std::span<float> dv,
                 std::span<const float> dout, std::span<const float> q, std::span<const float> k,
                 std::span<const float> v, std::span<const float> out, std::span<const float> lse,
                 std::span<const int32_t> segments, const AttentionShape& s, ThreadPool* pool) {
  const int64_t len = s.seq_len, qk = s.qk_dim, dvd = s.v_dim;
  const float scale = static_cast<float>(s.scale);
  ForEachSeqHead(s, pool, [&](int64_t seq, int64_t h, int) {
    HeadScratch& w = ThreadHeadScratch();
    const int64_t first = seq * len;
    const std::span<float> qh = Sized(w.q, len * qk), kh = Sized(w.k, len * qk),
                           vh = Sized(w.v, len * dvd), oh = Sized(w.o, len * dvd),
                           doh = Sized(w.d_o, len * dvd), dqh = Sized(w.dq, len * qk),
                           dkh = Sized(w.dk, len * qk), dvh = Sized(w.dv, len * dvd);
    Gather(qh, q, first, len, s.heads, h, qk);
    Gather(kh, k, first, len, s.heads, h, qk);
    Gather(vh, v, first, len, s.heads, h, dvd);
    Gather(oh, out, first, len, s.heads, h, dvd);
    Gather(doh, dout, first, len, s.heads, h, dvd);
    std::fill(dkh.begin(), dkh.end(), 0.0f);
    std::fill(dvh.begin(), dvh.end(), 0.0f);
    const int32_t* seg = segments.data() + first;
    for (int64_t t0 = 0; t0 < len; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, len - t0), end = t0 + rows;
      const std::span<float> p = Sized(w.p, rows * end), dp = Sized(w.dp, rows * end);
      const std::span<const float> q_rows = Rows(C(qh), t0, rows, qk),
                                   do_rows = Rows(C(doh), t0, rows, dvd);
      Gemm(p, q_rows, Rows(C(kh), 0, end, qk), rows, end, qk, Trans::kNo, Trans::kYes, false,
           nullptr);
      Gemm(dp, do_rows, Rows(C(vh), 0, end, dvd), rows, end, dvd, Trans::kNo, Trans::kYes, false,
           nullptr);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r;
        float* prow = p.data() + r * end;
        float* dprow = dp.data() + r * end;
        const float row_lse = lse[(first + t) * s.heads + h];
        float delta = 0;  // Σ_j P_tj·dP_tj = dO_t · O_t
        for (int64_t c = 0; c < dvd; ++c) delta += doh[t * dvd + c] * oh[t * dvd + c];
        const int32_t own = seg[t];
        for (int64_t j = 0; j <= t; ++j)
          prow[j] = seg[j] == own ? FastExp(scale * prow[j] - row_lse) : 0.0f;
        std::fill(prow + t + 1, prow + end, 0.0f);
        // dZ, with the scale of Z = scale·q·kᵀ; 0 wherever P is.
        for (int64_t j = 0; j < end; ++j) dprow[j] = prow[j] * (dprow[j] - delta) * scale;
      }
      Gemm(Rows(dqh, t0, rows, qk), C(dp), Rows(C(kh), 0, end, qk), rows, qk, end, Trans::kNo,
           Trans::kNo, false, nullptr);
      Gemm(Rows(dkh, 0, end, qk), C(dp), q_rows, end, qk, rows, Trans::kYes, Trans::kNo, true,
           nullptr);
      Gemm(Rows(dvh, 0, end, dvd), C(p), do_rows, end, dvd, rows, Trans::kYes, Trans::kNo, true,
           nullptr);
    }
    Scatter(dq, dqh, first, len, s.heads, h, qk);
    Scatter(dk, dkh, first, len, s.heads, h, qk);
    Scatter(dv, dvh, first, len, s.heads, h, dvd);
  });
}

}  // namespace

template <typename T>
void AttentionForward(std::span<T> out, std::span<T> lse, std::span<const T> q,
                      std::span<const T> k, std::span<const T> v, std::span<const int32_t> segments,
                      const AttentionShape& shape, ThreadPool* pool) {
  const AttentionShape& s = shape;
  CheckAttentionArgs("AttentionForward", s, segments);
  const int64_t rows = s.n_seqs * s.seq_len;
  CheckSpan("AttentionForward", "out", out, rows * s.heads * s.v_dim);
  CheckSpan("AttentionForward", "lse", lse, rows * s.heads);
  CheckSpan("AttentionForward", "q", q, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionForward", "k", k, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionForward", "v", v, rows * s.heads * s.v_dim);
  if constexpr (std::is_same_v<T, float>) {
    ForwardF32(out, lse, q, k, v, segments, s, pool);
    return;
  }
  const int workers = pool == nullptr ? 1 : pool->size();
  std::vector<T> scratch(static_cast<size_t>(workers * s.seq_len));  // [worker, seq_len]
  const T scale = static_cast<T>(s.scale);
  ForEachSeqHead(s, pool, [&](int64_t seq, int64_t h, int worker) {
    T* z = scratch.data() + worker * s.seq_len;  // [seq_len] scores of one query row
    const int64_t first = seq * s.seq_len;
    for (int64_t t = 0; t < s.seq_len; ++t) {
      const int64_t row = first + t;
      const T* qt = q.data() + (row * s.heads + h) * s.qk_dim;
      T max = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j <= t; ++j) {
        if (segments[first + j] != segments[row]) continue;
        z[j] = scale * Dot(qt, k.data() + ((first + j) * s.heads + h) * s.qk_dim, s.qk_dim);
        max = std::max(max, z[j]);
      }
      T* o = out.data() + (row * s.heads + h) * s.v_dim;
      std::fill(o, o + s.v_dim, T{0});
      T sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        if (segments[first + j] != segments[row]) continue;
        const T p = std::exp(z[j] - max);
        sum += p;
        const T* vj = v.data() + ((first + j) * s.heads + h) * s.v_dim;
        for (int64_t c = 0; c < s.v_dim; ++c) o[c] += p * vj[c];
      }
      // The query attends at least to itself, so sum >= 1.
      for (int64_t c = 0; c < s.v_dim; ++c) o[c] /= sum;
      lse[row * s.heads + h] = max + std::log(sum);
    }
  });
}

template <typename T>
void AttentionBackward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<const T> dout,
                       std::span<const T> q, std::span<const T> k, std::span<const T> v,
                       std::span<const T> out, std::span<const T> lse,
                       std::span<const int32_t> segments, const AttentionShape& shape,
                       ThreadPool* pool) {
  const AttentionShape& s = shape;
  CheckAttentionArgs("AttentionBackward", s, segments);
  const int64_t rows = s.n_seqs * s.seq_len;
  CheckSpan("AttentionBackward", "dq", dq, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionBackward", "dk", dk, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionBackward", "dv", dv, rows * s.heads * s.v_dim);
  CheckSpan("AttentionBackward", "dout", dout, rows * s.heads * s.v_dim);
  CheckSpan("AttentionBackward", "q", q, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionBackward", "k", k, rows * s.heads * s.qk_dim);
  CheckSpan("AttentionBackward", "v", v, rows * s.heads * s.v_dim);
  CheckSpan("AttentionBackward", "out", out, rows * s.heads * s.v_dim);
  CheckSpan("AttentionBackward", "lse", lse, rows * s.heads);
  if constexpr (std::is_same_v<T, float>) {
    BackwardF32(dq, dk, dv, dout, q, k, v, out, lse, segments, s, pool);
    return;
  }
  const T scale = static_cast<T>(s.scale);
  ForEachSeqHead(s, pool, [&](int64_t seq, int64_t h, int) {
    const int64_t first = seq * s.seq_len;
    // Zero this (sequence, head)'s slices of the gradients.
    for (int64_t t = 0; t < s.seq_len; ++t) {
      const int64_t row = first + t;
      std::fill_n(dq.data() + (row * s.heads + h) * s.qk_dim, s.qk_dim, T{0});
      std::fill_n(dk.data() + (row * s.heads + h) * s.qk_dim, s.qk_dim, T{0});
      std::fill_n(dv.data() + (row * s.heads + h) * s.v_dim, s.v_dim, T{0});
    }
    // With P = softmax(Z), Z = scale·q·kᵀ, O = P·v: dv = Pᵀ·dO, dP = dO·vᵀ,
    // dZ_ts = P_ts·(dP_ts − Σ_j P_tj·dP_tj) where Σ_j P_tj·dP_tj = dO_t · O_t.
    for (int64_t t = 0; t < s.seq_len; ++t) {
      const int64_t row = first + t;
      const T* qt = q.data() + (row * s.heads + h) * s.qk_dim;
      const T* dot = dout.data() + (row * s.heads + h) * s.v_dim;
      const T delta = Dot(dot, out.data() + (row * s.heads + h) * s.v_dim, s.v_dim);
      const T row_lse = lse[row * s.heads + h];
      T* dqt = dq.data() + (row * s.heads + h) * s.qk_dim;
      for (int64_t j = 0; j <= t; ++j) {
        if (segments[first + j] != segments[row]) continue;
        const int64_t key = (first + j) * s.heads + h;
        const T* kj = k.data() + key * s.qk_dim;
        const T* vj = v.data() + key * s.v_dim;
        const T p = std::exp(scale * Dot(qt, kj, s.qk_dim) - row_lse);
        const T dp = Dot(dot, vj, s.v_dim);
        const T dz = p * (dp - delta) * scale;
        T* dkj = dk.data() + key * s.qk_dim;
        T* dvj = dv.data() + key * s.v_dim;
        for (int64_t c = 0; c < s.qk_dim; ++c) {
          dqt[c] += dz * kj[c];
          dkj[c] += dz * qt[c];
        }
        for (int64_t c = 0; c < s.v_dim; ++c) dvj[c] += p * dot[c];
      }
    }
  });
}

#define WHALE_INSTANTIATE_ATTENTION(T)                                                             \
  template void AttentionForward<T>(std::span<T>, std::span<T>, std::span<const T>,                \
                                    std::span<const T>, std::span<const T>,                        \
                                    std::span<const int32_t>, const AttentionShape&, ThreadPool*); \
  template void AttentionBackward<T>(                                                              \
      std::span<T>, std::span<T>, std::span<T>, std::span<const T>, std::span<const T>,            \
      std::span<const T>, std::span<const T>, std::span<const T>, std::span<const T>,              \
      std::span<const int32_t>, const AttentionShape&, ThreadPool*);
WHALE_INSTANTIATE_ATTENTION(float)
WHALE_INSTANTIATE_ATTENTION(double)
#undef WHALE_INSTANTIATE_ATTENTION

}  // namespace whale
