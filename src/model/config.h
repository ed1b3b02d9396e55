// ModelConfig: every field of a DeepSeek-V2/V3 Hugging Face config.json, parsed and validated
// once at load. Derived sizes are const methods.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/quant.h"

namespace whale {

enum class ModelType { kDeepseekV2, kDeepseekV3 };
enum class ScoringFunc { kSoftmax, kSigmoid };
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct YarnScaling {
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

// quantization_config of DeepSeek's FP8 checkpoints.
struct Fp8Quantization {
  int64_t block_rows = 128;  // weight_block_size[0]
  int64_t block_cols = 128;  // weight_block_size[1]
  std::string activation_scheme = "dynamic";
};

// quantization_config of whale's own block formats (kernels/quant.h):
// {"quant_method": "whale", "format": "int8" | "int4", "group_size": 32}.
struct BlockQuantization {
  QuantFormat format = QuantFormat::kInt8;
  int64_t group_size = kQuantGroup;  // only 32 is supported
};

struct ModelConfig {
  ModelType model_type = ModelType::kDeepseekV3;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense layers
  int64_t moe_intermediate_size = 0;  // each routed expert; shared = n_shared_experts * this
  int64_t num_hidden_layers = 0;
  int64_t num_nextn_predict_layers = 0;  // MTP modules stored after the main layers
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // carried for HF; MLA does not use it
  int64_t q_lora_rank = 0;          // 0: config has null, a single q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<YarnScaling> rope_scaling;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = 0;
  std::vector<int64_t> eos_token_ids;
  bool tie_word_embeddings = false;
  std::optional<Fp8Quantization> quantization;
  std::optional<BlockQuantization> block_quantization;  // exclusive with `quantization`
  std::string torch_dtype = "bfloat16";
  // Training-only fields, kept so that a config round-trips.
  double aux_loss_alpha = 0.001;
  bool seq_aux = true;
  double initializer_range = 0.02;

  // Derived sizes.
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int64_t shared_intermediate_size() const { return n_shared_experts * moe_intermediate_size; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  // Layers stored in the checkpoint: the main stack plus the MTP modules after it.
  int64_t num_stored_layers() const { return num_hidden_layers + num_nextn_predict_layers; }
  // Values cached per token per layer by MLA: the normalized latent and the shared rope key.
  int64_t latent_cache_values() const { return kv_lora_rank + qk_rope_head_dim; }
  // What standard multi-head attention would cache: K and V of every head.
  int64_t full_kv_cache_values() const {
    return num_attention_heads * (qk_head_dim() + v_head_dim);
  }
  // (qk_nope + qk_rope)^-1/2, times mscale(factor, mscale_all_dim)^2 under YaRN (spec 4.5).
  double softmax_scale() const;
  const char* model_type_name() const;
};

// Parses config.json text; `source` names the file in errors. Throws Error naming the field,
// the value found and what was expected, for unknown model types, routing methods, scoring
// functions, rope types, quantization formats, and inconsistent sizes.
ModelConfig ParseModelConfig(const std::string& json_text, const std::string& source);
ModelConfig LoadModelConfig(const std::string& model_dir);
// Serializes as a Hugging Face config.json that ParseModelConfig reads back to an equal config.
std::string ModelConfigToJson(const ModelConfig& config);
// Consistency checks shared by the parser and the presets.
void ValidateModelConfig(const ModelConfig& config, const std::string& source);

}  // namespace whale
