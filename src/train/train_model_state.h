// Internal to TrainModel (train_model.cc, train_mla.cc, train_moe.cc): parameter handles and
// the activations each block saves for its backward. Not part of the training API.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "train/fp8_recipe.h"
#include "train/train_model.h"

namespace whale {

template <typename T>
struct MlaParams {
  Parameter<T>* q_a = nullptr;        // [q_lora_rank, hidden]  (q_lora_rank > 0)
  Parameter<T>* q_a_norm = nullptr;   // [q_lora_rank]
  Parameter<T>* q_b = nullptr;        // [heads * qk_head_dim, q_lora_rank]
  Parameter<T>* q = nullptr;          // [heads * qk_head_dim, hidden]  (q_lora_rank == 0)
  Parameter<T>* kv_a = nullptr;       // [kv_lora_rank + rope, hidden]
  Parameter<T>* kv_a_norm = nullptr;  // [kv_lora_rank]
  Parameter<T>* kv_b = nullptr;       // [heads * (nope + v), kv_lora_rank]
  Parameter<T>* o = nullptr;          // [hidden, heads * v]
};

template <typename T>
struct MlpParams {
  Parameter<T>* gate = nullptr;  // [inter, hidden]
  Parameter<T>* up = nullptr;    // [inter, hidden]
  Parameter<T>* down = nullptr;  // [hidden, inter]
  int64_t inter = 0;
};

template <typename T>
struct BlockParams {
  Parameter<T>* input_norm = nullptr;  // [hidden]
  Parameter<T>* post_norm = nullptr;   // [hidden]
  MlaParams<T> attn;
  bool is_moe = false;
  MlpParams<T> dense;
  Parameter<T>* router = nullptr;  // [experts, hidden]
  Parameter<T>* bias = nullptr;    // [experts] or null
  std::vector<MlpParams<T>> experts;
  bool has_shared = false;
  MlpParams<T> shared;
};

// Saved by one SwiGLU MLP over m rows.
template <typename T>
struct MlpSaved {
  int64_t m = 0;
  std::vector<T> x;              // [m, hidden] its input (a gathered copy for routed experts)
  std::vector<T> gate, up, act;  // [m, inter] each; act = silu(gate) * up
  std::vector<T> out;            // [m, hidden] (routed experts: before the gate weight)
};

template <typename T>
struct BlockSaved {
  std::vector<T> x_in;                    // [n, hidden] residual stream entering the block
  std::vector<T> a, rstd_a;               // [n, hidden], [n]: input_layernorm
  std::vector<T> q_low, q_low_n, rstd_q;  // [n, q_lora], [n, q_lora], [n]
  std::vector<T> q;                       // [n, heads, qk] after RoPE
  std::vector<T> latent, rstd_latent, c;  // [n, kv_lora] raw, [n], normed
  std::vector<T> kv_b_out;                // [n, heads, nope + v]
  std::vector<T> k, v;                    // [n, heads, qk] (k_pe broadcast), [n, heads, v]
  std::vector<T> o, lse;                  // [n, heads, v], [n, heads]
  std::vector<T> x_mid;                   // [n, hidden] after the attention residual add
  std::vector<T> b, rstd_b;               // [n, hidden], [n]: post_attention_layernorm
  MlpSaved<T> dense;                      // dense FFN
  std::vector<T> router_logits, scores;   // [n, experts] each
  std::vector<int32_t> expert_ids;        // [n, top_k]
  std::vector<T> expert_weights;          // [n, top_k]
  std::vector<int32_t> expert_offsets;    // [experts + 1] first slot of each expert
  std::vector<int32_t> expert_slots;      // [n * top_k]: (token * top_k + k), grouped by expert
  std::vector<MlpSaved<T>> routed;        // [experts]
  MlpSaved<T> shared;
};

// Temporaries of one Step kept across steps: a fresh zero-filled vector per op costs a page fault
// per 4 KiB and a memset every step (the logits' gradient alone is [N, vocab]). They grow, never
// shrink, and are not cleared: every user writes them with `=` or zeroes them first. Named by
// who uses them, so that buffers alive at the same time are distinct.
template <typename T>
struct StepScratch {
  std::vector<T> x, dx, dhn;                  // [n, hidden] Step: residual stream and its gradients
  std::vector<T> dlogits, dmtp_logits;        // [n, vocab], [n', vocab]
  std::vector<T> xm, dxm, dhn_m, du;          // MTP: [n', hidden] ×3, [n', 2 * hidden]
  std::vector<T> den, dhh, de, dh;            // MTP: [n', hidden] each
  std::vector<T> db, da;                      // BlockBackward: [n, hidden] each
  std::vector<T> kv, k_pe;                    // MLA forward: [n, r + rope], [n, rope]
  std::vector<T> d_o, dq, dk, dv;             // MLA backward: [n, H, v], [n, H, qk] ×2, [n, H, v]
  std::vector<T> dq_low_n, dq_low;            // [n, q_lora] each
  std::vector<T> dkv_b, dkv, dc, dlatent;     // [n, H, nope + v], [n, r + rope], [n, r] ×2
  std::vector<T> dact, dgate, dup;            // MlpBackward: [m, inter] each
  std::vector<T> dexp, dx_expert;             // MoeBackward per expert: [m, hidden] each
  std::vector<T> dweights, dscores, drouter;  // [n, K], [n, E], [n, E]
};

// v's first `size` elements (v grows to hold them; see StepScratch).
template <typename T>
std::span<T> Use(std::vector<T>& v, int64_t size) {
  if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  return std::span<T>(v.data(), static_cast<size_t>(size));
}

// What a block needs to know about the token rows it runs on.
struct RowInfo {
  int64_t n_seqs = 0, seq_len = 0;
  std::span<const int32_t> segments;   // [n]
  std::span<const int32_t> positions;  // [n]
  int64_t n() const { return n_seqs * seq_len; }
};

template <typename T>
struct TrainModel<T>::State {
  ParameterSet<T>* params = nullptr;
  const ModelConfig* config = nullptr;
  ThreadPool* pool = nullptr;
  OpProfile* profile = nullptr;  // optional per-op timing
  Precision precision = Precision::kF32;
  RouterParams router{};
  std::vector<float> inv_freq;  // [rope / 2]
  double softmax_scale = 1;

  Parameter<T>* embed = nullptr;
  Parameter<T>* final_norm = nullptr;
  Parameter<T>* head = nullptr;
  std::vector<BlockParams<T>> blocks;  // main layers, then the MTP block
  Parameter<T>* mtp_enorm = nullptr;
  Parameter<T>* mtp_hnorm = nullptr;
  Parameter<T>* mtp_eh_proj = nullptr;
  Parameter<T>* mtp_head_norm = nullptr;

  std::vector<BlockSaved<T>> saved;  // per block (main, then MTP)
  LinearWorkspace workspace;
  StepScratch<T> tmp;

  // Main model.
  std::vector<int32_t> positions;          // [n]
  std::vector<T> x_final, hn, rstd_final;  // [n, hidden], [n, hidden], [n]
  std::vector<T> logits;                   // [n, vocab]
  // MTP module over n' rows.
  std::vector<int32_t> mtp_inputs, mtp_targets, mtp_segments, mtp_positions;  // [n']
  std::vector<T> mtp_h;                                   // [n', hidden] main hn of position i
  std::vector<T> mtp_e;                                   // [n', hidden] Emb(inputs[i + 1])
  std::vector<T> mtp_en, mtp_rstd_e, mtp_hh, mtp_rstd_h;  // normed embedding / hidden
  std::vector<T> mtp_u;  // [n', 2 * hidden] = [enorm(e) | hnorm(h)]
  std::vector<T> mtp_x_final, mtp_hn, mtp_rstd_final;
  std::vector<T> mtp_logits;  // [n', vocab]

  double balance_alpha = 0;  // of the current Step
  double balance_loss = 0;   // Σ over main MoE layers, of the current Step
  int64_t n_main_blocks = 0;

  std::vector<std::vector<int64_t>> loads;
  std::vector<int64_t> load_layers;

  // Linear layer through the configured precision (quantizable: not embedding, head, router).
  void Linear(std::span<T> y, std::span<const T> x, const Parameter<T>& w, int64_t n,
              bool quantizable);
  void LinearBack(std::span<T> dx, Parameter<T>& w, std::span<const T> dy, std::span<const T> x,
                  int64_t n, bool accumulate_dx, bool quantizable);

  void BlockForward(int64_t block, const RowInfo& rows, std::span<T> x);  // x: [n, hidden] in/out
  // dx: [n, hidden] holds ∂/∂(block output) on entry, ∂/∂(block input) on return.
  void BlockBackward(int64_t block, const RowInfo& rows, std::span<T> dx, double balance_scale);
  void AttentionForward(int64_t block, const RowInfo& rows);  // saved.a -> x_mid - x_in
  void AttentionBackward(int64_t block, const RowInfo& rows, std::span<const T> dout,
                         std::span<T> da);
  void MoeForward(int64_t block, const RowInfo& rows, std::span<T> out);
  void MoeBackward(int64_t block, const RowInfo& rows, std::span<const T> dout, std::span<T> db,
                   double balance_scale);
  void MlpForward(const MlpParams<T>& p, MlpSaved<T>& s, int64_t hidden);
  // dx = ∂/∂x (`=`), parameter grads +=.
  void MlpBackward(MlpParams<T>& p, MlpSaved<T>& s, std::span<const T> dout, std::span<T> dx,
                   int64_t hidden);
};

}  // namespace whale
