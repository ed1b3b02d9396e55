#include "model/summary.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "model/layout.h"
#include "util/progress.h"

namespace whale {
namespace {

std::string Format(const char* format, auto... args) {
  char text[512];
  std::snprintf(text, sizeof(text), format, args...);
  return text;
}

const char* MethodName(TopkMethod m) {
  switch (m) {
    case TopkMethod::kNoauxTc:
      return "noaux_tc";
    case TopkMethod::kGroupLimitedGreedy:
      return "group_limited_greedy";
    default:
      return "greedy";
  }
}

}  // namespace

std::string HumanCount(double count) {
  const char* suffix[] = {"", " K", " M", " B", " T"};
  int i = 0;
  while (count >= 1000 && i < 4) {
    count /= 1000;
    ++i;
  }
  return i == 0 ? Format("%.0f", count) : Format("%.2f%s", count, suffix[i]);
}

std::string DescribeModel(const ModelConfig& c, const Checkpoint* checkpoint) {
  std::ostringstream out;
  const auto row = [&](const char* key, const std::string& value) {
    out << Format("%-12s", key) << value << "\n";
  };
  int64_t n_moe = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) n_moe += c.is_moe_layer(l);
  row("model", Format("%s, vocab %lld, hidden %lld", c.model_type_name(), (long long)c.vocab_size,
                      (long long)c.hidden_size));
  row("layers", Format("%lld: %lld dense (SwiGLU %lld) + %lld MoE; MTP modules: %lld",
                       (long long)c.num_hidden_layers, (long long)(c.num_hidden_layers - n_moe),
                       (long long)c.intermediate_size, (long long)n_moe,
                       (long long)c.num_nextn_predict_layers));
  std::string q = c.q_lora_rank > 0 ? Format("q_lora_rank %lld", (long long)c.q_lora_rank)
                                    : std::string("q_proj (no q compression)");
  row("attention", Format("MLA, %lld heads, %s, kv_lora_rank %lld, qk %lld nope + %lld rope, "
                          "v %lld, softmax scale %.9f",
                          (long long)c.num_attention_heads, q.c_str(), (long long)c.kv_lora_rank,
                          (long long)c.qk_nope_head_dim, (long long)c.qk_rope_head_dim,
                          (long long)c.v_head_dim, c.softmax_scale()));
  if (c.n_routed_experts > 0) {
    row("experts",
        Format("%lld routed (%lld active per token, %s %s, %lld groups, top %lld groups, "
               "scale %g%s), %lld shared (width %lld), expert width %lld",
               (long long)c.n_routed_experts, (long long)c.num_experts_per_tok,
               c.scoring_func == ScoringFunc::kSigmoid ? "sigmoid" : "softmax",
               MethodName(c.topk_method), (long long)c.n_group, (long long)c.topk_group,
               c.routed_scaling_factor, c.norm_topk_prob ? ", renormalized" : "",
               (long long)c.n_shared_experts, (long long)c.shared_intermediate_size(),
               (long long)c.moe_intermediate_size));
  }
  if (c.rope_scaling) {
    row("context",
        Format("%lld positions (YaRN: %lld original x factor %g, beta %g/%g, "
               "mscale %g/%g)",
               (long long)c.max_position_embeddings,
               (long long)c.rope_scaling->original_max_position_embeddings, c.rope_scaling->factor,
               c.rope_scaling->beta_fast, c.rope_scaling->beta_slow, c.rope_scaling->mscale,
               c.rope_scaling->mscale_all_dim));
  } else {
    row("context", Format("%lld positions (plain RoPE, theta %g)",
                          (long long)c.max_position_embeddings, c.rope_theta));
  }

  const ParameterCounts p = CountParameters(c);
  row("parameters",
      Format("main model %s (%lld)", HumanCount(p.main_total).c_str(), (long long)p.main_total));
  row("", Format("activated per token %s (%lld) without the input embedding (a lookup); "
                 "%s with it",
                 HumanCount(p.main_active_compute()).c_str(), (long long)p.main_active_compute(),
                 HumanCount(p.main_active).c_str()));
  if (c.num_nextn_predict_layers > 0)
    row("", Format("MTP %s unique + %s stored copies of embedding/head; stored total %s (%lld)",
                   HumanCount(p.mtp_unique).c_str(), HumanCount(p.mtp_copies).c_str(),
                   HumanCount(p.stored_total()).c_str(), (long long)p.stored_total()));

  const int64_t latent = c.latent_cache_values();
  const int64_t full = c.full_kv_cache_values();
  row("KV cache",
      Format("%lld values per token per layer (MLA latent %lld + rope key %lld); "
             "full multi-head K/V would be %lld (%.1fx more)",
             (long long)latent, (long long)c.kv_lora_rank, (long long)c.qk_rope_head_dim,
             (long long)full, static_cast<double>(full) / latent));
  row("", Format("per token, %lld layers: %s in BF16, %s in F32 (full K/V in BF16: %s)",
                 (long long)c.num_hidden_layers,
                 HumanAmount(2.0 * latent * c.num_hidden_layers, "B").c_str(),
                 HumanAmount(4.0 * latent * c.num_hidden_layers, "B").c_str(),
                 HumanAmount(2.0 * full * c.num_hidden_layers, "B").c_str()));

  if (checkpoint == nullptr) {
    row("weights", "absent (config.json only)");
    return out.str();
  }
  struct Usage {
    int64_t tensors = 0;
    double bytes = 0;
    int64_t elements = 0;
  };
  std::map<std::string, Usage> by_dtype;
  int64_t n_scales = 0;
  double scale_bytes = 0;
  std::string example;
  for (const std::string& name : checkpoint->Names()) {
    const SafetensorsEntry& e = checkpoint->Entry(name);
    if (name.ends_with("_scale_inv")) {
      ++n_scales;
      scale_bytes += static_cast<double>(e.end - e.begin);
      continue;
    }
    Usage& u = by_dtype[std::string(Name(e.dtype))];
    ++u.tensors;
    u.bytes += static_cast<double>(e.end - e.begin);
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    if (e.dtype == DType::U8 && c.block_quantization) n *= 2;  // two int4 codes per byte
    u.elements += n;
    if (e.dtype == DType::F8_E4M3 && example.empty()) {
      const auto& s = checkpoint->Entry(name + "_scale_inv");
      example = Format("%s %s F8_E4M3 with scales %s F32", name.c_str(),
                       ShapeString(e.shape).c_str(), ShapeString(s.shape).c_str());
    }
  }
  row("weights", Format("%zu file(s) in %s", checkpoint->n_files(), checkpoint->dir().c_str()));
  for (const auto& [dtype, u] : by_dtype)
    row("", Format("%-8s %6lld tensors  %14s  %s params", dtype.c_str(), (long long)u.tensors,
                   HumanAmount(u.bytes, "B").c_str(), HumanCount(u.elements).c_str()));
  if (n_scales > 0) {
    row("", Format("%-8s %6lld block-scale tensors (weight_scale_inv, 128x128 blocks)  %s", "F32",
                   (long long)n_scales, HumanAmount(scale_bytes, "B").c_str()));
    row("", "e.g. " + example);
  }
  if (c.block_quantization) {
    // The quantized tensors are the I8 and U8 ones (int4 checkpoints keep int8 heads), by their
    // logical [rows, cols] in the layout.
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const TensorSpec& spec : CheckpointLayout(c)) shapes[spec.name] = spec.shape;
    double weights = 0, bytes = 0;
    int64_t tensors = 0;
    bool int8_head = false;  // checkpoints quantized before the heads were keep them in BF16/F32
    for (const std::string& name : checkpoint->Names()) {
      const SafetensorsEntry& e = checkpoint->Entry(name);
      const auto shape = shapes.find(name);
      if ((e.dtype != DType::I8 && e.dtype != DType::U8) || shape == shapes.end()) continue;
      int8_head = int8_head || name == "lm_head.weight";
      ++tensors;
      bytes += static_cast<double>(e.end - e.begin);
      weights += static_cast<double>(shape->second[0] * shape->second[1]);
    }
    row("quantized",
        Format("whale %s%s, groups of %lld columns, rows interleaved by 8: %lld tensors of "
               "codes and F16 scales, %s = %.3f bits per quantized weight (padding included)",
               QuantFormatName(c.block_quantization->format),
               int8_head ? " (output heads int8)" : "", (long long)c.block_quantization->group_size,
               (long long)tensors, HumanAmount(bytes, "B").c_str(),
               weights > 0 ? 8.0 * bytes / weights : 0.0));
  }
  return out.str();
}

}  // namespace whale
