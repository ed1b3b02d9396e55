#include "model/presets.h"

#include "util/error.h"

namespace whale {
namespace {

YarnScaling Yarn(double factor, int64_t original, double mscale) {
  YarnScaling y;
  y.factor = factor;
  y.original_max_position_embeddings = original;
  y.beta_fast = 32;
  y.beta_slow = 1;
  y.mscale = mscale;
  y.mscale_all_dim = mscale;
  return y;
}

ModelConfig TinyV3() {
  ModelConfig c;
  c.model_type = ModelType::kDeepseekV3;
  c.vocab_size = 512;
  c.hidden_size = 200;  // not a multiple of 128: FP8 edge blocks occur
  c.intermediate_size = 320;
  c.moe_intermediate_size = 64;
  c.num_hidden_layers = 3;
  c.first_k_dense_replace = 1;
  c.num_nextn_predict_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.q_lora_rank = 96;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 16;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 4;
  c.n_group = 4;
  c.topk_group = 2;
  c.topk_method = TopkMethod::kNoauxTc;
  c.scoring_func = ScoringFunc::kSigmoid;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.rope_scaling = Yarn(4, 256, 1.0);
  c.max_position_embeddings = 1024;
  c.eos_token_ids = {1};
  return c;
}

ModelConfig TinyV2() {
  ModelConfig c;
  c.model_type = ModelType::kDeepseekV2;
  c.vocab_size = 512;
  c.hidden_size = 160;
  c.intermediate_size = 256;
  c.moe_intermediate_size = 48;
  c.num_hidden_layers = 3;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.q_lora_rank = 0;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 8;
  c.n_shared_experts = 2;
  c.num_experts_per_tok = 3;
  c.n_group = 4;
  c.topk_group = 2;
  c.topk_method = TopkMethod::kGroupLimitedGreedy;
  c.scoring_func = ScoringFunc::kSoftmax;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.5;
  c.rope_scaling = Yarn(4, 256, 0.707);
  c.max_position_embeddings = 1024;
  c.eos_token_ids = {1};
  return c;
}

// About 1.1B parameters with V3's head dimensions, routing (sigmoid, noaux_tc, 8 groups, top-4
// groups), one shared expert and an MTP module.
ModelConfig SmallV3() {
  ModelConfig c = TinyV3();
  c.vocab_size = 32000;
  c.hidden_size = 1536;
  c.intermediate_size = 4096;
  c.moe_intermediate_size = 384;
  c.num_hidden_layers = 9;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 12;
  c.q_lora_rank = 512;
  c.kv_lora_rank = 256;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.n_routed_experts = 64;
  c.num_experts_per_tok = 6;
  c.n_group = 8;
  c.topk_group = 4;
  c.rope_scaling = Yarn(40, 4096, 1.0);
  c.max_position_embeddings = 163840;
  return c;
}

ModelConfig V2Lite() {  // deepseek-ai/DeepSeek-V2-Lite config.json
  ModelConfig c;
  c.model_type = ModelType::kDeepseekV2;
  c.vocab_size = 102400;
  c.hidden_size = 2048;
  c.intermediate_size = 10944;
  c.moe_intermediate_size = 1408;
  c.num_hidden_layers = 27;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 16;
  c.q_lora_rank = 0;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.n_routed_experts = 64;
  c.n_shared_experts = 2;
  c.num_experts_per_tok = 6;
  c.n_group = 1;
  c.topk_group = 1;
  c.topk_method = TopkMethod::kGreedy;
  c.scoring_func = ScoringFunc::kSoftmax;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  c.rope_scaling = Yarn(40, 4096, 0.707);
  c.max_position_embeddings = 163840;
  c.bos_token_id = 100000;
  c.eos_token_ids = {100001};
  return c;
}

ModelConfig V3Full() {  // deepseek-ai/DeepSeek-V3 config.json
  ModelConfig c;
  c.model_type = ModelType::kDeepseekV3;
  c.vocab_size = 129280;
  c.hidden_size = 7168;
  c.intermediate_size = 18432;
  c.moe_intermediate_size = 2048;
  c.num_hidden_layers = 61;
  c.first_k_dense_replace = 3;
  c.num_nextn_predict_layers = 1;
  c.num_attention_heads = 128;
  c.num_key_value_heads = 128;
  c.q_lora_rank = 1536;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.n_routed_experts = 256;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 8;
  c.n_group = 8;
  c.topk_group = 4;
  c.topk_method = TopkMethod::kNoauxTc;
  c.scoring_func = ScoringFunc::kSigmoid;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.rope_scaling = Yarn(40, 4096, 1.0);
  c.max_position_embeddings = 163840;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  c.quantization = Fp8Quantization{};
  return c;
}

}  // namespace

const std::vector<Preset>& Presets() {
  static const std::vector<Preset> presets = {
      {"tiny-v3", "tiny DeepSeek-V3 (noaux_tc routing, q_lora, YaRN, MTP) for tests", TinyV3()},
      {"tiny-v2", "tiny DeepSeek-V2 (softmax group-limited routing, no q_lora) for tests",
       TinyV2()},
      {"small-v3", "about 1.1B parameters with V3 proportions and routing, for benchmarks",
       SmallV3()},
      {"v2-lite", "DeepSeek-V2-Lite's published shapes (15.7B, 2.4B active)", V2Lite()},
      {"v3-671b", "DeepSeek-V3/R1's published shapes (671B + 14B MTP, 37B active)", V3Full()},
  };
  return presets;
}

const Preset& FindPreset(const std::string& name) {
  std::string known;
  for (const auto& preset : Presets()) {
    if (preset.name == name) return preset;
    known += (known.empty() ? "" : ", ") + preset.name;
  }
  Fail("unknown preset '", name, "' (known: ", known, ")");
}

}  // namespace whale
