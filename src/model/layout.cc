#include "model/layout.h"

namespace whale {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ScaleName(const std::string& weight_name) {
  return weight_name + "_scale_inv";
}

std::vector<int64_t> ScaleShape(const std::vector<int64_t>& weight_shape, int64_t block_rows,
                                int64_t block_cols) {
  return {(weight_shape[0] + block_rows - 1) / block_rows,
          (weight_shape[1] + block_cols - 1) / block_cols};
}

std::optional<QuantFormat> BlockQuantizedFormat(TensorRole role, QuantFormat checkpoint_format) {
  switch (role) {
    case TensorRole::kLinear:
    case TensorRole::kMtpProjection:
      return checkpoint_format;
    case TensorRole::kOutputHead:
      return QuantFormat::kInt8;
    default:
      return std::nullopt;
  }
}

std::vector<int64_t> BlockQuantizedShape(QuantFormat format, const std::vector<int64_t>& shape) {
  return {QuantRowBlocks(shape[0]), QuantBlockBytes(format, shape[1])};
}

namespace {

void AddMlp(std::vector<TensorSpec>& out, const std::string& prefix, int64_t hidden, int64_t inter,
            TensorGroup group, int64_t layer, int64_t expert) {
  out.push_back(
      {prefix + "gate_proj.weight", {inter, hidden}, TensorRole::kLinear, group, layer, expert});
  out.push_back(
      {prefix + "up_proj.weight", {inter, hidden}, TensorRole::kLinear, group, layer, expert});
  out.push_back(
      {prefix + "down_proj.weight", {hidden, inter}, TensorRole::kLinear, group, layer, expert});
}

void AddBlock(std::vector<TensorSpec>& out, const ModelConfig& c, int64_t layer,
              TensorGroup group) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t d = c.hidden_size;
  const int64_t h = c.num_attention_heads;
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, TensorRole role) {
    out.push_back({p + name, std::move(shape), role, group, layer});
  };
  add("input_layernorm.weight", {d}, TensorRole::kNorm);
  if (c.q_lora_rank > 0) {
    add("self_attn.q_a_proj.weight", {c.q_lora_rank, d}, TensorRole::kLinear);
    add("self_attn.q_a_layernorm.weight", {c.q_lora_rank}, TensorRole::kNorm);
    add("self_attn.q_b_proj.weight", {h * c.qk_head_dim(), c.q_lora_rank}, TensorRole::kLinear);
  } else {
    add("self_attn.q_proj.weight", {h * c.qk_head_dim(), d}, TensorRole::kLinear);
  }
  add("self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, d},
      TensorRole::kLinear);
  add("self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}, TensorRole::kNorm);
  add("self_attn.kv_b_proj.weight", {h * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
      TensorRole::kLinear);
  add("self_attn.o_proj.weight", {d, h * c.v_head_dim}, TensorRole::kLinear);
  add("post_attention_layernorm.weight", {d}, TensorRole::kNorm);
  // The MTP block is always MoE (V3 stores it as an MoE layer).
  if (group == TensorGroup::kMtp || c.is_moe_layer(layer)) {
    add("mlp.gate.weight", {c.n_routed_experts, d}, TensorRole::kRouter);
    if (c.topk_method == TopkMethod::kNoauxTc)
      add("mlp.gate.e_score_correction_bias", {c.n_routed_experts}, TensorRole::kRouterBias);
    for (int64_t e = 0; e < c.n_routed_experts; ++e)
      AddMlp(out, p + "mlp.experts." + std::to_string(e) + ".", d, c.moe_intermediate_size, group,
             layer, e);
    if (c.n_shared_experts > 0)
      AddMlp(out, p + "mlp.shared_experts.", d, c.shared_intermediate_size(), group, layer, -1);
  } else {
    AddMlp(out, p + "mlp.", d, c.intermediate_size, group, layer, -1);
  }
}

}  // namespace

std::vector<TensorSpec> CheckpointLayout(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  const int64_t d = c.hidden_size;
  out.push_back(
      {"model.embed_tokens.weight", {c.vocab_size, d}, TensorRole::kEmbedding, TensorGroup::kMain});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) AddBlock(out, c, l, TensorGroup::kMain);
  out.push_back({"model.norm.weight", {d}, TensorRole::kNorm, TensorGroup::kMain});
  if (!c.tie_word_embeddings)
    out.push_back(
        {"lm_head.weight", {c.vocab_size, d}, TensorRole::kOutputHead, TensorGroup::kMain});
  for (int64_t l = c.num_hidden_layers; l < c.num_stored_layers(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto mtp = TensorGroup::kMtp;
    out.push_back({p + "embed_tokens.weight",
                   {c.vocab_size, d},
                   TensorRole::kEmbedding,
                   mtp,
                   l,
                   -1,
                   /*shared_copy=*/true});
    out.push_back({p + "enorm.weight", {d}, TensorRole::kNorm, mtp, l});
    out.push_back({p + "hnorm.weight", {d}, TensorRole::kNorm, mtp, l});
    out.push_back({p + "eh_proj.weight", {d, 2 * d}, TensorRole::kMtpProjection, mtp, l});
    AddBlock(out, c, l, mtp);
    out.push_back({p + "shared_head.norm.weight", {d}, TensorRole::kNorm, mtp, l});
    out.push_back({p + "shared_head.head.weight",
                   {c.vocab_size, d},
                   TensorRole::kOutputHead,
                   mtp,
                   l,
                   -1,
                   /*shared_copy=*/true});
  }
  return out;
}

ParameterCounts CountParameters(const ModelConfig& c) {
  ParameterCounts counts;
  for (const auto& t : CheckpointLayout(c)) {
    const int64_t n = t.numel();
    if (t.group == TensorGroup::kMtp) {
      (t.shared_copy ? counts.mtp_copies : counts.mtp_unique) += n;
      continue;
    }
    counts.main_total += n;
    if (t.role == TensorRole::kEmbedding) counts.embedding += n;
    if (t.expert >= 0) {
      counts.routed_expert_total += n;
    } else {
      counts.main_active += n;
    }
  }
  // Each token runs num_experts_per_tok of the n_routed_experts routed experts of a MoE layer.
  if (c.n_routed_experts > 0)
    counts.main_active += counts.routed_expert_total / c.n_routed_experts * c.num_experts_per_tok;
  return counts;
}

}  // namespace whale
