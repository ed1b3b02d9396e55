// Multi-head Latent Attention for training (spec 4.3), naive form: per-head keys and values
// expanded from the latent, then causal softmax attention within each document segment.
//   a [n, hidden] -> q_low = a·W_qaᵀ -> q_low_n = RmsNorm -> q = q_low_n·W_qbᵀ [n, H, nope+rope]
//   kv = a·W_kvaᵀ [n, r + rope]: c = RmsNorm(kv[:r]), k_pe = RoPE(kv[r:]) shared by all heads
//   kv_b_out = c·W_kvbᵀ [n, H, nope + v] -> k = [k_nope | k_pe], v
//   q_pe = RoPE(q[:, :, nope:]); o = Attention(q, k, v) [n, H, v]; out = o·W_oᵀ
#include <algorithm>

#include "train/ops_attention.h"
#include "train/ops_linear.h"
#include "train/ops_norm.h"
#include "train/ops_rope.h"
#include "train/train_model_state.h"

namespace whale {
namespace {

template <typename T>
std::span<const T> C(const std::vector<T>& v) {
  return std::span<const T>(v);
}

template <typename T>
std::span<const T> C(std::span<T> v) {
  return v;
}

}  // namespace

template <typename T>
void TrainModel<T>::State::AttentionForward(int64_t block, const RowInfo& rows) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), d = c.hidden_size, H = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, qk = c.qk_head_dim();
  const int64_t dv = c.v_head_dim, r = c.kv_lora_rank, qr = c.q_lora_rank;
  MlaParams<T>& p = blocks[block].attn;
  BlockSaved<T>& sv = saved[block];

  sv.q.resize(n * H * qk);
  if (qr > 0) {
    sv.q_low.resize(n * qr);
    sv.q_low_n.resize(n * qr);
    sv.rstd_q.resize(n);
    Linear(sv.q_low, C(sv.a), *p.q_a, n, true);
    RmsNormForward<T>(sv.q_low_n, sv.rstd_q, C(sv.q_low), C(p.q_a_norm->value), n, qr,
                      c.rms_norm_eps, pool);
    Linear(sv.q, C(sv.q_low_n), *p.q_b, n, true);
  } else {
    Linear(sv.q, C(sv.a), *p.q, n, true);
  }
  RopeForward<T>(sv.q, rows.positions, n, H, qk, nope, rope, inv_freq);

  const std::span<T> kv = Use(tmp.kv, n * (r + rope));  // [n, r + rope]
  Linear(kv, C(sv.a), *p.kv_a, n, true);
  sv.latent.resize(n * r);
  const std::span<T> k_pe = Use(tmp.k_pe, n * rope);  // [n, rope]
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(kv.begin() + t * (r + rope), r, sv.latent.begin() + t * r);
    std::copy_n(kv.begin() + t * (r + rope) + r, rope, k_pe.begin() + t * rope);
  }
  sv.c.resize(n * r);
  sv.rstd_latent.resize(n);
  RmsNormForward<T>(sv.c, sv.rstd_latent, C(sv.latent), C(p.kv_a_norm->value), n, r, c.rms_norm_eps,
                    pool);
  RopeForward<T>(k_pe, rows.positions, n, 1, rope, 0, rope, inv_freq);
  sv.kv_b_out.resize(n * H * (nope + dv));
  Linear(sv.kv_b_out, C(sv.c), *p.kv_b, n, true);
  sv.k.resize(n * H * qk);
  sv.v.resize(n * H * dv);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const T* src = sv.kv_b_out.data() + (t * H + h) * (nope + dv);
      T* k = sv.k.data() + (t * H + h) * qk;
      std::copy_n(src, nope, k);
      std::copy_n(k_pe.data() + t * rope, rope, k + nope);
      std::copy_n(src + nope, dv, sv.v.data() + (t * H + h) * dv);
    }
  sv.o.resize(n * H * dv);
  sv.lse.resize(n * H);
  const AttentionShape shape{rows.n_seqs, rows.seq_len, H, qk, dv, softmax_scale};
  {
    const OpTimer timer(profile, "attention core fwd");
    whale::AttentionForward<T>(sv.o, sv.lse, C(sv.q), C(sv.k), C(sv.v), rows.segments, shape, pool);
  }
  sv.x_mid.resize(n * d);
  Linear(sv.x_mid, C(sv.o), *p.o, n, true);
}

template <typename T>
void TrainModel<T>::State::AttentionBackward(int64_t block, const RowInfo& rows,
                                             std::span<const T> dout, std::span<T> da) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), H = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, qk = c.qk_head_dim();
  const int64_t dv = c.v_head_dim, r = c.kv_lora_rank, qr = c.q_lora_rank;
  MlaParams<T>& p = blocks[block].attn;
  BlockSaved<T>& sv = saved[block];

  const std::span<T> d_o = Use(tmp.d_o, n * H * dv);  // [n, H, v]
  LinearBack(d_o, *p.o, dout, C(sv.o), n, false, true);
  const std::span<T> dq = Use(tmp.dq, n * H * qk), dk = Use(tmp.dk, n * H * qk),
                     dvv = Use(tmp.dv, n * H * dv);
  const AttentionShape shape{rows.n_seqs, rows.seq_len, H, qk, dv, softmax_scale};
  {
    const OpTimer timer(profile, "attention core bwd");
    whale::AttentionBackward<T>(dq, dk, dvv, C(d_o), C(sv.q), C(sv.k), C(sv.v), C(sv.o), C(sv.lse),
                                rows.segments, shape, pool);
  }

  // Queries.
  RopeBackward<T>(dq, rows.positions, n, H, qk, nope, rope, inv_freq);
  if (qr > 0) {
    const std::span<T> dq_low_n = Use(tmp.dq_low_n, n * qr), dq_low = Use(tmp.dq_low, n * qr);
    LinearBack(dq_low_n, *p.q_b, C(dq), C(sv.q_low_n), n, false, true);
    RmsNormBackward<T>(dq_low, std::span<T>(p.q_a_norm->grad), C(dq_low_n), C(sv.q_low),
                       C(p.q_a_norm->value), C(sv.rstd_q), n, qr, false, pool);
    LinearBack(da, *p.q_a, C(dq_low), C(sv.a), n, false, true);
  } else {
    LinearBack(da, *p.q, C(dq), C(sv.a), n, false, true);
  }

  // Keys and values: ∂kv_b_out from ∂k_nope and ∂v; ∂k_pe sums over the heads sharing it.
  const std::span<T> dkv_b = Use(tmp.dkv_b, n * H * (nope + dv));  // [n, H, nope + v]
  const std::span<T> dkv = Use(tmp.dkv, n * (r + rope));           // [n, r + rope]
  std::fill(dkv.begin(), dkv.end(), T(0));  // the heads' ∂k_pe add up in it
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < H; ++h) {
      T* dst = dkv_b.data() + (t * H + h) * (nope + dv);
      const T* dkh = dk.data() + (t * H + h) * qk;
      std::copy_n(dkh, nope, dst);
      std::copy_n(dvv.data() + (t * H + h) * dv, dv, dst + nope);
      T* dpe = dkv.data() + t * (r + rope) + r;
      for (int64_t i = 0; i < rope; ++i) dpe[i] += dkh[nope + i];
    }
  RopeBackward<T>(dkv, rows.positions, n, 1, r + rope, r, rope, inv_freq);
  const std::span<T> dc = Use(tmp.dc, n * r), dlatent = Use(tmp.dlatent, n * r);
  LinearBack(dc, *p.kv_b, C(dkv_b), C(sv.c), n, false, true);
  RmsNormBackward<T>(dlatent, std::span<T>(p.kv_a_norm->grad), C(dc), C(sv.latent),
                     C(p.kv_a_norm->value), C(sv.rstd_latent), n, r, false, pool);
  for (int64_t t = 0; t < n; ++t)
    std::copy_n(dlatent.begin() + t * r, r, dkv.begin() + t * (r + rope));
  LinearBack(da, *p.kv_a, C(dkv), C(sv.a), n, /*accumulate_dx=*/true, true);
}

template struct TrainModel<float>::State;
template struct TrainModel<double>::State;

}  // namespace whale
