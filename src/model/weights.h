// Weights: the tensors of a checkpoint mapped by their HF names into typed per-layer structs.
// Every view points into the memory-mapped files: BF16 and FP8 weights stay as stored (FP8 with
// their 128x128 block scales) and are never copied to F32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/matmul.h"
#include "model/config.h"

namespace whale {

struct NormWeight {
  DType dtype = DType::F32;  // F32 or BF16
  const void* data = nullptr;
  int64_t dim = 0;
};

struct MlpWeights {     // SwiGLU: down(silu(gate x) * up x)
  WeightMatrix gate{};  // [inter, hidden]
  WeightMatrix up{};    // [inter, hidden]
  WeightMatrix down{};  // [hidden, inter]
};

struct MlaWeights {
  WeightMatrix q_a{};    // [q_lora_rank, hidden]          (q_lora_rank > 0)
  NormWeight q_a_norm;   // [q_lora_rank]
  WeightMatrix q_b{};    // [heads * qk_head_dim, q_lora_rank]
  WeightMatrix q{};      // [heads * qk_head_dim, hidden]  (q_lora_rank == 0)
  WeightMatrix kv_a{};   // [kv_lora_rank + qk_rope_head_dim, hidden]
  NormWeight kv_a_norm;  // [kv_lora_rank]
  WeightMatrix kv_b{};   // [heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]
  WeightMatrix o{};      // [hidden, heads * v_head_dim]
};

struct MoeWeights {
  WeightMatrix router{};        // [n_routed_experts, hidden], F32 or BF16
  const float* bias = nullptr;  // [n_routed_experts] e_score_correction_bias (noaux_tc only)
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared;  // one MLP of width n_shared_experts * moe_intermediate
};

struct BlockWeights {
  NormWeight input_norm;  // [hidden]
  MlaWeights attention;
  NormWeight post_attention_norm;  // [hidden]
  bool is_moe = false;
  MlpWeights dense;  // when !is_moe
  MoeWeights moe;    // when is_moe
};

struct MtpWeights {        // the depth-1 multi-token-prediction module (spec section 6)
  WeightMatrix embed{};    // [vocab, hidden]: the module's stored copy of the embedding
  NormWeight enorm;        // [hidden]
  NormWeight hnorm;        // [hidden]
  WeightMatrix eh_proj{};  // [hidden, 2 * hidden]: columns [0, hidden) act on enorm(embedding)
  BlockWeights block;
  NormWeight head_norm;  // shared_head.norm [hidden]
  WeightMatrix head{};   // shared_head.head [vocab, hidden]
};

class Weights {
 public:
  // Opens the checkpoint in `dir`, checks every tensor against the config's layout (missing,
  // misshaped, unexpected or wrongly typed tensors are errors naming the tensor) and maps them.
  static Weights Load(const std::string& dir);
  static Weights Load(const ModelConfig& config, Checkpoint checkpoint);

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return checkpoint_; }

  WeightMatrix embed{};  // [vocab, hidden]
  std::vector<BlockWeights> layers;
  NormWeight final_norm;   // [hidden]
  WeightMatrix lm_head{};  // [vocab, hidden] (the embedding when tied)
  std::optional<MtpWeights> mtp;

 private:
  ModelConfig config_;
  Checkpoint checkpoint_;
};

// Checks a checkpoint against the layout of `config` without mapping anything; throws Error on
// the first problem. Used by Weights::Load and `whale inspect`.
void ValidateCheckpoint(const ModelConfig& config, const Checkpoint& checkpoint);

}  // namespace whale
