// Multi-head Latent Attention (spec 4.3), the two forms side by side.
//
// Shared by both forms: queries (through the q_lora bottleneck or a single q_proj), the latent
// c_KV = RMSNorm(kv_a x)[:kv_lora_rank] and the shared key k_pe = RoPE(kv_a x)[kv_lora_rank:],
// written to the cache before attending so that every token sees itself.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/activation.h"
#include "kernels/latent_attention.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "model/model.h"
#include "util/error.h"

namespace whale {
namespace {

float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// W_UV^h = head h's value rows of kv_b [dv, r]: a view of the stored rows when the layout
// allows it (kernels/matmul.h ViewRows), else dequantized into `scratch` [dv, r].
WeightMatrix ValueWeight(const WeightMatrix& kv_b, int64_t head, int64_t nope, int64_t dv,
                         float* scratch) {
  WeightMatrix uv;
  const int64_t value_row = head * (nope + dv) + nope;
  if (!ViewRows(kv_b, value_row, value_row + dv, &uv)) {
    DequantizeRows(std::span<float>(scratch, dv * kv_b.cols), kv_b, value_row, value_row + dv);
    uv = WeightMatrix{DType::F32, scratch, dv, kv_b.cols};
  }
  return uv;
}

}  // namespace

void Model::Attention(const MlaWeights& w, int64_t cache_layer,
                      std::span<const SequenceChunk> batch, int64_t n, std::span<const float> x,
                      std::span<float> out) {
  const ModelConfig& c = config_;
  const int64_t heads = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim;
  const int64_t rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim();
  const int64_t dv = c.v_head_dim;
  const int64_t r = c.kv_lora_rank;
  const int64_t row = r + rope;  // one cache row: [latent | k_pe]
  const float eps = static_cast<float>(c.rms_norm_eps);
  StageTimer projections(Stage(&ForwardProfile::attention_projections));

  // Queries: q [n, heads, qk] = W_qb · RMSNorm(W_qa · x), or W_q · x without q compression.
  const std::span<float> q(q_, n * heads * qk);
  if (c.q_lora_rank > 0) {
    const std::span<float> q_low(q_low_, n * c.q_lora_rank);                        // [n, q_lora]
    const std::span<float> q_low_normed(q_low_ + n * c.q_lora_rank, q_low.size());  // [n, q_lora]
    MatMul(q_low, x, n, w.q_a, &pool_);
    RmsNorm(q_low_normed, q_low, n, c.q_lora_rank, w.q_a_norm.dtype, w.q_a_norm.data, eps);
    MatMul(q, q_low_normed, n, w.q_b, &pool_);
  } else {
    MatMul(q, x, n, w.q, &pool_);
  }

  // Keys: kv [n, latent | k_rope] = W_kva · x; the cache gets RMSNorm(latent) and RoPE(k_rope).
  MatMul(std::span<float>(kv_, n * row), x, n, w.kv_a, &pool_);
  for (int64_t t = 0; t < n; ++t) {
    const TokenInfo& info = tokens_[t];
    float* cached = batch[info.chunk].cache->layer(cache_layer) + info.position * row;  // [row]
    RmsNorm(std::span<float>(cached, r), std::span<const float>(kv_ + t * row, r), 1, r,
            w.kv_a_norm.dtype, w.kv_a_norm.data, eps);
    std::memcpy(cached + r, kv_ + t * row + r, rope * sizeof(float));
    ApplyRope(std::span<float>(cached + r, rope), 1, rope, rope, info.position, inv_freq_);
    // Every head's q_pe rotates at the same position.
    ApplyRope(std::span<float>(q_ + t * heads * qk, heads * qk).subspan(nope), heads, qk, rope,
              info.position, inv_freq_);
  }

  const int64_t head_rows = nope + dv;
  const int64_t L = options_.max_context;
  projections.Pause();
  StageTimer core(Stage(&ForwardProfile::attention_core));
  if (options_.attention == AttentionForm::kAbsorbed) {
    AbsorbedAttention(w, cache_layer, batch, n);
  } else {
    pool_.ParallelFor(heads, 1, [&](size_t begin, size_t end, int worker) {
      float* w_head = head_weight_ + worker * head_rows * r;     // [nope + dv, r]
      float* kv_head = head_kv_ + worker * L * (head_rows + 1);  // [L, nope + dv]
      float* scores = kv_head + L * head_rows;                   // [L]
      for (size_t h = begin; h < end; ++h) {
        DequantizeRows(std::span<float>(w_head, head_rows * r), w.kv_b, h * head_rows,
                       (h + 1) * head_rows);
        int64_t t = 0;
        for (const SequenceChunk& chunk : batch) {
          const float* cache = chunk.cache->layer(cache_layer);  // [L, row]
          const int64_t len = static_cast<int64_t>(chunk.tokens.size());
          const int64_t last = tokens_[t + len - 1].position;
          // Naive: k_nope^h(s) = W_UK^h c(s) and v^h(s) = W_UV^h c(s) for every position s.
          for (int64_t s = 0; s <= last; ++s)
            for (int64_t i = 0; i < head_rows; ++i)
              kv_head[s * head_rows + i] = Dot(w_head + i * r, cache + s * row, r);
          for (int64_t end_t = t + len; t < end_t; ++t) {
            const int64_t p = tokens_[t].position;
            const float* q_nope = q_ + (t * heads + h) * qk;  // [nope]
            const float* q_pe = q_nope + nope;                // [rope]
            float* o = attn_out_ + (t * heads + h) * dv;      // [dv]
            for (int64_t s = 0; s <= p; ++s)
              scores[s] = softmax_scale_ * (Dot(q_nope, kv_head + s * head_rows, nope) +
                                            Dot(q_pe, cache + s * row + r, rope));
            Softmax(std::span<float>(scores, p + 1));
            std::fill(o, o + dv, 0.0f);
            for (int64_t s = 0; s <= p; ++s)
              for (int64_t k = 0; k < dv; ++k)
                o[k] += scores[s] * kv_head[s * head_rows + nope + k];
          }
        }
      }
    });
  }

  core.Pause();
  projections.Resume();

  // out [n, hidden] = W_o · [o^0; ...; o^{H-1}]
  MatMul(out, std::span<const float>(attn_out_, n * heads * dv), n, w.o, &pool_);
}

void Model::AbsorbQueries(const MlaWeights& w, int64_t head, int64_t b,
                          std::span<const float> q_nope, std::span<float> q_lat) const {
  const int64_t first = head * (config_.qk_nope_head_dim + config_.v_head_dim);
  MatMulUntransposed(q_lat, q_nope, b, w.kv_b, first, first + config_.qk_nope_head_dim);
}

// Absorbed attention (DeepSeek-V2 §2.1: W_UK folded into the queries, W_UV applied after the
// mix), the query tokens in groups of kAttentionBlock. The absorptions through kv_b are per token,
// not per sequence, so they run once per head over the group's tokens; only the scores and the
// mix read a sequence's own cache, up to each token's own position (the causal mask):
//   q_abs[t, h] = [W_UK^hᵀ q_nope(t, h) | q_pe(t, h)]          per head, all tokens: [b, row]
//   u[t, h] = Σ_{s ≤ p_t} softmax(scale · q_abs[t, h] · C[s]) C[s, :r]    per token, all heads
//   o[t, h] = W_UV^h u[t, h]                                     per head, all tokens: [b, dv]
// The middle line reads a token's cache rows once for all its heads, in one pass with a running
// softmax (kernels/latent_attention.h); a prompt's tokens meet the same rows in cache. That beat
// per-head score and mix products over blocks of 64 tokens for prompts too (small-v3 int4, one
// thread, 2048 tokens: 182 -> 229-247 tok/s). Three fork/joins per group of tokens.
void Model::AbsorbedAttention(const MlaWeights& w, int64_t cache_layer,
                              std::span<const SequenceChunk> batch, int64_t n) {
  const ModelConfig& c = config_;
  const int64_t heads = c.num_attention_heads, qk = c.qk_head_dim();
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, dv = c.v_head_dim;
  const int64_t r = c.kv_lora_rank, row = r + rope;
  for (int64_t t0 = 0; t0 < n; t0 += kAttentionBlock) {
    const int64_t b = std::min(kAttentionBlock, n - t0);
    const float* q = q_ + t0 * heads * qk;          // [b, heads, qk]
    float* attn_out = attn_out_ + t0 * heads * dv;  // [b, heads, dv]

    pool_.ParallelFor(heads, 1, [&](size_t begin, size_t end, int worker) {
      float* q_nope = att_qn_ + worker * kAttentionBlock * nope;  // [b, nope]
      float* q_lat = att_u_ + worker * kAttentionBlock * r;       // [b, r]
      for (size_t h = begin; h < end; ++h) {
        for (int64_t t = 0; t < b; ++t)
          std::memcpy(q_nope + t * nope, q + (t * heads + h) * qk, nope * sizeof(float));
        AbsorbQueries(w, static_cast<int64_t>(h), b, std::span<const float>(q_nope, b * nope),
                      std::span<float>(q_lat, b * r));
        for (int64_t t = 0; t < b; ++t) {
          float* dst = group_q_ + (t * heads + h) * row;  // [row]
          std::memcpy(dst, q_lat + t * r, r * sizeof(float));
          std::memcpy(dst + r, q + (t * heads + h) * qk + nope, rope * sizeof(float));
        }
      }
    });

    // Items: (token, group of heads); heads are split when tokens are fewer than threads.
    const int64_t groups = std::min<int64_t>(heads, (pool_.size() + b - 1) / b);
    const int64_t per_group = (heads + groups - 1) / groups;
    pool_.ParallelFor(b * groups, 1, [&](size_t begin, size_t end, int /*worker*/) {
      for (size_t item = begin; item < end; ++item) {
        const int64_t t = static_cast<int64_t>(item) / groups;
        const int64_t h0 = static_cast<int64_t>(item) % groups * per_group;
        const int64_t nh = std::min(heads, h0 + per_group) - h0;
        if (nh <= 0) continue;
        const TokenInfo& info = tokens_[t0 + t];
        const float* cache = batch[info.chunk].cache->layer(cache_layer);  // [L, row]
        const int64_t positions = info.position + 1;
        LatentAttention(std::span<float>(group_u_ + (t * heads + h0) * r, nh * r),
                        std::span<const float>(group_q_ + (t * heads + h0) * row, nh * row),
                        std::span<const float>(cache, positions * row),
                        {nh, positions, row, r, softmax_scale_});
      }
    });

    pool_.ParallelFor(heads, 1, [&](size_t begin, size_t end, int worker) {
      float* mixed = att_u_ + worker * kAttentionBlock * r;      // [b, r]
      float* o = att_o_ + worker * kAttentionBlock * dv;         // [b, dv]
      float* w_value = head_weight_ + worker * (nope + dv) * r;  // [dv, r] when not viewable
      for (size_t h = begin; h < end; ++h) {
        const WeightMatrix uv = ValueWeight(w.kv_b, static_cast<int64_t>(h), nope, dv, w_value);
        for (int64_t t = 0; t < b; ++t)
          std::memcpy(mixed + t * r, group_u_ + (t * heads + h) * r, r * sizeof(float));
        MatMul(std::span<float>(o, b * dv), std::span<const float>(mixed, b * r), b, uv, nullptr);
        for (int64_t t = 0; t < b; ++t)
          std::memcpy(attn_out + (t * heads + h) * dv, o + t * dv, dv * sizeof(float));
      }
    });
  }
}

}  // namespace whale
