// Model: the DeepSeek-V2/V3 layer stack over mapped weights (spec sections 4-6).
//
// Forward(batch) runs several sequences in one pass: every projection is one matrix product over
// all tokens of the batch, attention runs per sequence against its own KvCache, and MoE groups
// the batch's tokens by expert. Activations are F32, row-major, preallocated for
// `max_batch_tokens`; nothing is allocated per call.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kernels/router.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace whale {

// Naive: per-head K and V expanded from the latent cache. Absorbed: queries folded into the
// latent space, output through the value half of kv_b_proj (what decode uses). Equal in exact
// arithmetic; both kept and tested equal.
enum class AttentionForm { kAbsorbed, kNaive };

// A run of new tokens for one sequence; they take positions cache->length() onwards, and the
// cache advances past them.
struct SequenceChunk {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;
  bool all_logits = false;  // logits for every token of the chunk, else for its last token only
};

struct ModelOptions {
  int64_t max_batch_tokens = 512;  // tokens per Forward call, over all chunks
  int64_t max_context = 4096;      // longest KvCache used with this model
  AttentionForm attention = AttentionForm::kAbsorbed;
};

// Wall time of Forward's stages in seconds, summed over the calls made while profiling is on
// (whale bench --profile). What no stage covers (embedding, the blocks' norms and residual adds,
// the MTP module's own products) is left out.
struct ForwardProfile {
  double attention_projections = 0;  // q (and its low-rank path), kv_a with the cache write, o
  double attention_core = 0;         // attention over the latent cache, kv_b's absorption included
  double router = 0;                 // router logits and top-k
  double experts = 0;                // routed and shared experts, and their weighted sum
  double dense_ffn = 0;              // the dense SwiGLU of the first layers
  double head = 0;                   // final norm and output head
};

// The router settings of a config's MoE layers (kernels/router.h), validated by the caller.
RouterParams RouterParamsFor(const ModelConfig& config);

class Model {
 public:
  Model(const Weights& weights, ThreadPool& pool, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  // Routed experts whose weights Forward / ForwardMtp have read, summed over MoE layers and calls
  // (an expert serving several tokens of a batch counts once per layer and call): what a batched
  // decode step actually reads, for its roofline (whale bench).
  int64_t routed_experts_read() const { return routed_experts_read_; }
  void set_attention_form(AttentionForm form) { options_.attention = form; }
  // Off by default; turning it on (or off) clears the sums. The clock is read twice per stage and
  // layer, ~300 times a V2-Lite token, well under 0.1 % of its time.
  void set_profiling(bool on) {
    profiling_ = on;
    profile_ = {};
  }
  const ForwardProfile& profile() const { return profile_; }

  // A cache for the main layers / for the MTP module, `context` positions long.
  KvCache NewCache(int64_t context) const;
  KvCache NewMtpCache(int64_t context) const;

  // Rows of logits Forward writes for `batch`: a chunk's length if all_logits, else 1.
  static int64_t LogitRows(std::span<const SequenceChunk> batch);

  // logits: [LogitRows(batch), vocab], chunk by chunk. final_hidden (optional):
  // [n_tokens, hidden], the final normed hidden state of every token, which the MTP module
  // takes. Throws Error on a token id outside the vocabulary, a context overflow or a batch over
  // max_batch_tokens; the caches are unchanged then.
  void Forward(std::span<const SequenceChunk> batch, std::span<float> logits,
               std::span<float> final_hidden = {});

  // The MTP module (spec section 6): chunk tokens are t_{i+1}, `hidden` [n_tokens, hidden] holds
  // the main model's final normed hidden states h_i, chunk caches are MTP caches whose length is
  // position i. Writes draft logits predicting t_{i+2}, [LogitRows(batch), vocab].
  void ForwardMtp(std::span<const SequenceChunk> batch, std::span<const float> hidden,
                  std::span<float> logits);

 private:
  // Adds the time from construction (or Resume) to destruction (or Pause) to *sink; a null sink
  // (profiling off) reads no clock.
  class StageTimer {
   public:
    explicit StageTimer(double* sink) : sink_(sink) { Resume(); }
    ~StageTimer() { Pause(); }
    StageTimer(const StageTimer&) = delete;
    StageTimer& operator=(const StageTimer&) = delete;
    void Resume() {
      if (sink_) begin_ = std::chrono::steady_clock::now();
    }
    void Pause() {
      if (sink_ && begin_) {
        *sink_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - *begin_).count();
        begin_.reset();
      }
    }

   private:
    double* sink_;
    std::optional<std::chrono::steady_clock::time_point> begin_;
  };
  // Where a stage's time goes: the profile's member, or nowhere when profiling is off.
  double* Stage(double ForwardProfile::*member) {
    return profiling_ ? &(profile_.*member) : nullptr;
  }

  struct TokenInfo {
    int32_t chunk;     // index into the batch
    int64_t position;  // absolute position in its sequence
  };

  int64_t Prepare(std::span<const SequenceChunk> batch, bool mtp);
  void Embed(const WeightMatrix& table, std::span<const SequenceChunk> batch, float* out);
  void Block(const BlockWeights& block, int64_t cache_layer, std::span<const SequenceChunk> batch,
             int64_t n);
  void Attention(const MlaWeights& w, int64_t cache_layer, std::span<const SequenceChunk> batch,
                 int64_t n, std::span<const float> x, std::span<float> out);
  void AbsorbedAttention(const MlaWeights& w, int64_t cache_layer,
                         std::span<const SequenceChunk> batch, int64_t n);
  // SwiGLU over n tokens with gate/up scratch of [n, inter] each; pool nullptr runs it on the
  // calling thread (MoE's expert-parallel path runs one expert per task).
  void Mlp(const MlpWeights& w, int64_t inter, int64_t n, std::span<const float> x,
           std::span<float> out, float* gate, float* up, ThreadPool* pool);
  void Moe(const MoeWeights& w, int64_t n, std::span<const float> x, std::span<float> out);
  void Head(const NormWeight& norm, const WeightMatrix& head, std::span<const SequenceChunk> batch,
            int64_t n, std::span<float> logits, std::span<float> final_hidden);

  const Weights& weights_;
  const ModelConfig& config_;
  ThreadPool& pool_;
  ModelOptions options_;
  std::vector<float> inv_freq_;  // [qk_rope_head_dim / 2] YaRN frequencies
  float softmax_scale_;
  RouterParams router_;

  // Scratch, preallocated for max_batch_tokens (n below) and max_context (L).
  std::vector<TokenInfo> tokens_;  // [n]
  AlignedBuffer buffer_;
  float* residual_;       // [n, hidden]
  float* normed_;         // [n, hidden]
  float* branch_;         // [n, hidden]: attention or FFN output before the residual add
  float* q_low_;          // [n, q_lora_rank]
  float* q_;              // [n, heads, qk_head_dim]
  float* kv_;             // [n, kv_lora_rank + qk_rope_head_dim]
  float* attn_out_;       // [n, heads, v_head_dim]
  float* head_weight_;    // [workers, qk_nope + v, kv_lora_rank]: one head's kv_b rows, dequantized
  float* head_kv_;        // naive form: [workers, L, qk_nope + v] keys/values, then [L] scores
  float* gate_;           // [n, max intermediate]
  float* up_;             // [n, max intermediate]
  float* expert_in_;      // [n, hidden]
  float* expert_out_;     // [n, hidden]
  float* router_logits_;  // [n, n_routed_experts]
  float* router_scratch_;              // [RouterScratchSize]
  std::vector<int32_t> expert_ids_;    // [n, top_k]
  std::vector<float> expert_weights_;  // [n, top_k]
  std::vector<int32_t> expert_count_;  // [n_routed_experts + 1]
  std::vector<int32_t> expert_slots_;  // [n * top_k]: (token, k) slots grouped by expert
  // Expert-parallel MoE (few tokens, see ffn.cc), indexed by grouped slot p < kExpertParallelSlots:
  std::vector<int32_t> active_experts_;  // [n_routed_experts]: experts with tokens this call
  int64_t routed_experts_read_ = 0;
  bool profiling_ = false;
  ForwardProfile profile_;
  std::vector<int32_t> expert_tasks_;  // [n_routed_experts + 1]: largest first; -1 = shared
  float* slot_in_;                     // [p, hidden]: the slot's token
  float* slot_out_;                    // [p, hidden]: its expert's output
  float* slot_gate_;                   // [p, moe_intermediate]
  float* slot_up_;                     // [p, moe_intermediate]
  float* mtp_concat_;                  // [n, 2 * hidden]

  // Absorbed attention (attention.cc). q_lat[b, kv_lora_rank] = q_nope[b, qk_nope] · W_UK^h for
  // one head, read from kv_b's rows in their stored type (MatMulUntransposed).
  void AbsorbQueries(const MlaWeights& w, int64_t head, int64_t b, std::span<const float> q_nope,
                     std::span<float> q_lat) const;
  float* att_qn_;  // [workers, kAttentionBlock, qk_nope]: gathered q_nope of one head
  float* att_u_;   // [workers, kAttentionBlock, kv_lora_rank]: one head's latents, in or out
  float* att_o_;   // [workers, kAttentionBlock, v_head_dim]: one head's outputs
  // One group of query tokens, b = min(max_batch_tokens, kAttentionBlock):
  float* group_q_;  // [b, heads, kv_lora_rank + qk_rope]: every token's absorbed queries
  float* group_u_;  // [b, heads, kv_lora_rank]: every token's probability-weighted latents
};

// At most this many (token, expert) slots per MoE layer run expert-parallel: one task per
// expert on one thread each, instead of row-splitting every expert's three small products.
inline constexpr int64_t kExpertParallelSlots = 64;

// Query tokens per group of absorbed attention (bounds its per-token buffers).
inline constexpr int64_t kAttentionBlock = 64;

}  // namespace whale
