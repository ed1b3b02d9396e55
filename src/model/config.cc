#include "model/config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/mapped_file.h"
#include "util/error.h"

namespace whale {
namespace {

using Json = nlohmann::json;

// Keys HF writes that do not affect inference; accepted silently. Anything else unknown is
// reported on stderr so that a new field that might change the math does not pass unnoticed.
const std::set<std::string> kIgnoredKeys = {"architectures",
                                            "auto_map",
                                            "attention_dropout",
                                            "ep_size",
                                            "pretraining_tp",
                                            "use_cache",
                                            "transformers_version",
                                            "_name_or_path",
                                            "model_name",
                                            "head_dim",
                                            "qk_head_dim",
                                            "output_attentions",
                                            "output_hidden_states",
                                            "return_dict",
                                            "pad_token_id",
                                            "id2label",
                                            "label2id",
                                            "dtype",
                                            "num_experts",
                                            "moe_router_dtype",
                                            "generation_config",
                                            "is_decoder",
                                            "problem_type",
                                            "tokenizer_class",
                                            "chunk_size_feed_forward",
                                            "rope_interleave"};

// Reads typed fields from a JSON object, remembering which keys were used.
class Fields {
 public:
  Fields(const Json& json, std::string source) : json_(json), source_(std::move(source)) {}

  const Json* Find(const std::string& key) {
    used_.insert(key);
    const auto it = json_.find(key);
    return it == json_.end() ? nullptr : &*it;
  }
  [[noreturn]] void Bad(const std::string& key, const Json& value, const std::string& expected) {
    Fail(source_, ": field '", key, "' = ", value.dump(), ": expected ", expected);
  }
  int64_t Int(const std::string& key, std::optional<int64_t> fallback = std::nullopt,
              int64_t min = 0) {
    const Json* v = Find(key);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      Fail(source_, ": missing required field '", key, "'");
    }
    if (!v->is_number_integer()) Bad(key, *v, "an integer");
    const int64_t value = v->get<int64_t>();
    if (value < min) Bad(key, *v, Cat("an integer >= ", min));
    return value;
  }
  double Number(const std::string& key, std::optional<double> fallback = std::nullopt) {
    const Json* v = Find(key);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      Fail(source_, ": missing required field '", key, "'");
    }
    if (!v->is_number()) Bad(key, *v, "a number");
    const double value = v->get<double>();
    if (!std::isfinite(value)) Bad(key, *v, "a finite number");
    return value;
  }
  bool Bool(const std::string& key, bool fallback) {
    const Json* v = Find(key);
    if (v == nullptr || v->is_null()) return fallback;
    if (!v->is_boolean()) Bad(key, *v, "true or false");
    return v->get<bool>();
  }
  std::string String(const std::string& key, std::optional<std::string> fallback = std::nullopt) {
    const Json* v = Find(key);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      Fail(source_, ": missing required field '", key, "'");
    }
    if (!v->is_string()) Bad(key, *v, "a string");
    return v->get<std::string>();
  }
  std::vector<std::string> Unused() const {
    std::vector<std::string> unused;
    for (const auto& [key, unused_value] : json_.items())
      if (!used_.count(key) && !kIgnoredKeys.count(key)) unused.push_back(key);
    return unused;
  }
  const std::string& source() const { return source_; }

 private:
  const Json& json_;
  std::string source_;
  std::set<std::string> used_;
};

YarnScaling ParseYarn(const Json& rope, const std::string& source, const std::string& field) {
  Fields f(rope, Cat(source, ": ", field));
  YarnScaling yarn;
  yarn.factor = f.Number("factor");
  if (yarn.factor <= 0) f.Bad("factor", rope["factor"], "a positive number");
  yarn.original_max_position_embeddings = f.Int("original_max_position_embeddings", 4096, 1);
  yarn.beta_fast = f.Number("beta_fast", 32.0);
  yarn.beta_slow = f.Number("beta_slow", 1.0);
  yarn.mscale = f.Number("mscale", 1.0);
  yarn.mscale_all_dim = f.Number("mscale_all_dim", 0.0);
  f.Find("type");
  f.Find("rope_type");
  f.Find("rope_theta");
  for (const auto& key : f.Unused())
    Fail(source, ": field '", field, ".", key, "' is not a YaRN parameter this engine knows");
  return yarn;
}

}  // namespace

const char* ModelConfig::model_type_name() const {
  return model_type == ModelType::kDeepseekV3 ? "deepseek_v3" : "deepseek_v2";
}

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling && rope_scaling->mscale_all_dim != 0.0 && rope_scaling->factor > 1.0) {
    const double m = 0.1 * rope_scaling->mscale_all_dim * std::log(rope_scaling->factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

ModelConfig ParseModelConfig(const std::string& json_text, const std::string& source) {
  const Json json = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) Fail(source, ": not valid JSON");
  if (!json.is_object()) Fail(source, ": expected a JSON object");
  Fields f(json, source);
  ModelConfig c;

  const std::string model_type = f.String("model_type");
  if (model_type == "deepseek_v3") {
    c.model_type = ModelType::kDeepseekV3;
  } else if (model_type == "deepseek_v2") {
    c.model_type = ModelType::kDeepseekV2;
  } else {
    f.Bad("model_type", json["model_type"], "\"deepseek_v3\" or \"deepseek_v2\"");
  }
  const bool v3 = c.model_type == ModelType::kDeepseekV3;

  c.vocab_size = f.Int("vocab_size", std::nullopt, 1);
  c.hidden_size = f.Int("hidden_size", std::nullopt, 1);
  c.intermediate_size = f.Int("intermediate_size", std::nullopt, 1);
  c.moe_intermediate_size = f.Int("moe_intermediate_size", 0);
  c.num_hidden_layers = f.Int("num_hidden_layers", std::nullopt, 1);
  c.num_nextn_predict_layers = f.Int("num_nextn_predict_layers", 0);
  c.first_k_dense_replace = f.Int("first_k_dense_replace", 0);
  c.moe_layer_freq = f.Int("moe_layer_freq", 1, 1);
  c.num_attention_heads = f.Int("num_attention_heads", std::nullopt, 1);
  c.num_key_value_heads = f.Int("num_key_value_heads", c.num_attention_heads, 1);
  c.q_lora_rank = f.Int("q_lora_rank", 0);
  c.kv_lora_rank = f.Int("kv_lora_rank", std::nullopt, 1);
  c.qk_nope_head_dim = f.Int("qk_nope_head_dim", std::nullopt, 0);
  c.qk_rope_head_dim = f.Int("qk_rope_head_dim", std::nullopt, 2);
  c.v_head_dim = f.Int("v_head_dim", std::nullopt, 1);
  c.n_routed_experts = f.Int("n_routed_experts", 0);
  c.n_shared_experts = f.Int("n_shared_experts", 0);
  c.num_experts_per_tok = f.Int("num_experts_per_tok", 0);
  c.n_group = f.Int("n_group", 1, 1);
  c.topk_group = f.Int("topk_group", 1, 1);

  const std::string topk_method = f.String("topk_method", v3 ? "noaux_tc" : "greedy");
  if (topk_method == "greedy") {
    c.topk_method = TopkMethod::kGreedy;
  } else if (topk_method == "group_limited_greedy") {
    c.topk_method = TopkMethod::kGroupLimitedGreedy;
  } else if (topk_method == "noaux_tc") {
    c.topk_method = TopkMethod::kNoauxTc;
  } else {
    f.Bad("topk_method", json["topk_method"],
          "\"greedy\", \"group_limited_greedy\" or \"noaux_tc\"");
  }
  const std::string scoring = f.String("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax") {
    c.scoring_func = ScoringFunc::kSoftmax;
  } else if (scoring == "sigmoid") {
    c.scoring_func = ScoringFunc::kSigmoid;
  } else {
    f.Bad("scoring_func", json["scoring_func"], "\"softmax\" or \"sigmoid\"");
  }
  c.norm_topk_prob = f.Bool("norm_topk_prob", false);
  c.routed_scaling_factor = f.Number("routed_scaling_factor", 1.0);
  c.rms_norm_eps = f.Number("rms_norm_eps", 1e-6);
  c.max_position_embeddings = f.Int("max_position_embeddings", std::nullopt, 1);
  c.bos_token_id = f.Int("bos_token_id", 0);
  if (const Json* eos = f.Find("eos_token_id"); eos != nullptr && !eos->is_null()) {
    if (eos->is_number_integer()) {
      c.eos_token_ids.push_back(eos->get<int64_t>());
    } else if (eos->is_array()) {
      for (const auto& id : *eos) {
        if (!id.is_number_integer()) f.Bad("eos_token_id", *eos, "an integer or integers");
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      f.Bad("eos_token_id", *eos, "an integer or a list of integers");
    }
  }
  c.tie_word_embeddings = f.Bool("tie_word_embeddings", false);
  c.torch_dtype = f.String("torch_dtype", "bfloat16");
  c.aux_loss_alpha = f.Number("aux_loss_alpha", 0.001);
  c.seq_aux = f.Bool("seq_aux", true);
  c.initializer_range = f.Number("initializer_range", 0.02);

  const std::string act = f.String("hidden_act", "silu");
  if (act != "silu") f.Bad("hidden_act", json["hidden_act"], "\"silu\"");
  if (f.Bool("attention_bias", false))
    f.Bad("attention_bias", json["attention_bias"], "false (MLA projections have no bias)");
  if (json.contains("rope_interleave") && !json["rope_interleave"].is_null() &&
      json["rope_interleave"] != true)
    f.Bad("rope_interleave", json["rope_interleave"],
          "true (DeepSeek checkpoints rotate interleaved pairs)");

  // Rope: the original `rope_theta` + `rope_scaling`, or transformers 5's `rope_parameters`.
  c.rope_theta = f.Number("rope_theta", 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const Json* rope = f.Find(key);
    if (rope == nullptr || rope->is_null()) continue;
    if (!rope->is_object()) f.Bad(key, *rope, "an object");
    std::string type = rope->value("type", rope->value("rope_type", std::string()));
    if (rope->contains("rope_theta")) c.rope_theta = (*rope)["rope_theta"].get<double>();
    if (type == "default" && std::string(key) == "rope_parameters") continue;
    if (type != "yarn")
      Fail(source, ": field '", key, ".type' = \"", type,
           "\": expected \"yarn\" (the only rope scaling DeepSeek-V2/V3 use)");
    c.rope_scaling = ParseYarn(*rope, source, key);
  }

  if (const Json* q = f.Find("quantization_config"); q != nullptr && !q->is_null()) {
    if (!q->is_object()) f.Bad("quantization_config", *q, "an object");
    Fields qf(*q, Cat(source, ": quantization_config"));
    const std::string method = qf.String("quant_method");
    if (method == "whale") {
      BlockQuantization bq;
      const std::string format = qf.String("format");
      if (format == "int8")
        bq.format = QuantFormat::kInt8;
      else if (format == "int4")
        bq.format = QuantFormat::kInt4;
      else
        qf.Bad("format", (*q)["format"], "\"int8\" or \"int4\"");
      const Json* group = qf.Find("group_size");
      if (group == nullptr || !group->is_number_integer() || group->get<int64_t>() != kQuantGroup)
        Fail(source,
             ": field 'quantization_config.group_size' = ", group ? group->dump() : "missing",
             ": expected ", kQuantGroup);
      // Earlier whale versions stored the codes row-major (no "layout" field); their files
      // cannot be read as interleaved rows.
      const Json* layout = qf.Find("layout");
      if (layout == nullptr || !layout->is_string() || layout->get<std::string>() != "rows8")
        Fail(source, ": field 'quantization_config.layout' = ", layout ? layout->dump() : "missing",
             ": expected \"rows8\" (8 interleaved rows; a checkpoint without it was quantized "
             "by an older whale: run whale quantize again on the original checkpoint)");
      for (const auto& key : qf.Unused())
        Fail(source, ": field 'quantization_config.", key, "' is not supported");
      c.block_quantization = bq;
    } else if (method != "fp8") {
      qf.Bad("quant_method", (*q)["quant_method"],
             "\"fp8\" (block-scaled e4m3 weights) or \"whale\" (int8 / int4 groups)");
    }
  }
  if (const Json* q = f.Find("quantization_config");
      q != nullptr && q->is_object() && !c.block_quantization) {
    Fields qf(*q, Cat(source, ": quantization_config"));
    qf.String("quant_method");
    const std::string fmt = qf.String("fmt", "e4m3");
    if (fmt != "e4m3") qf.Bad("fmt", (*q)["fmt"], "\"e4m3\"");
    Fp8Quantization fp8;
    fp8.activation_scheme = qf.String("activation_scheme", "dynamic");
    if (fp8.activation_scheme != "dynamic")
      qf.Bad("activation_scheme", (*q)["activation_scheme"], "\"dynamic\"");
    const Json* block = qf.Find("weight_block_size");
    if (block == nullptr || !block->is_array() || block->size() != 2 ||
        !(*block)[0].is_number_integer() || !(*block)[1].is_number_integer() ||
        (*block)[0].get<int64_t>() <= 0 || (*block)[1].get<int64_t>() <= 0)
      Fail(source,
           ": field 'quantization_config.weight_block_size' = ", block ? block->dump() : "missing",
           ": expected [rows, cols] of positive integers");
    fp8.block_rows = (*block)[0].get<int64_t>();
    fp8.block_cols = (*block)[1].get<int64_t>();
    if (const Json* scale_fmt = qf.Find("scale_fmt"); scale_fmt && !scale_fmt->is_null())
      qf.Bad("scale_fmt", *scale_fmt, "absent or null (ue8m0 scales are not supported)");
    for (const auto& key : qf.Unused())
      Fail(source, ": field 'quantization_config.", key, "' is not supported");
    c.quantization = fp8;
  }

  const auto unused = f.Unused();
  if (!unused.empty()) {
    std::string list;
    for (const auto& key : unused) list += (list.empty() ? "" : ", ") + key;
    std::fprintf(stderr, "whale: warning: %s: ignoring unknown fields: %s\n", source.c_str(),
                 list.c_str());
  }
  ValidateModelConfig(c, source);
  return c;
}

void ValidateModelConfig(const ModelConfig& c, const std::string& source) {
  const auto bad = [&](const std::string& what) { Fail(source, ": inconsistent config: ", what); };
  if (c.quantization && c.block_quantization) bad("FP8 and whale block quantization at once");
  if (c.qk_rope_head_dim % 2 != 0)
    bad(Cat("qk_rope_head_dim = ", c.qk_rope_head_dim, " must be even (RoPE rotates pairs)"));
  if (c.first_k_dense_replace > c.num_hidden_layers)
    bad(Cat("first_k_dense_replace = ", c.first_k_dense_replace,
            " exceeds num_hidden_layers = ", c.num_hidden_layers));
  const bool has_moe = c.first_k_dense_replace < c.num_hidden_layers || c.num_nextn_predict_layers;
  if (has_moe) {
    if (c.n_routed_experts < 1)
      bad(Cat("n_routed_experts = ", c.n_routed_experts, " but layers from ",
              c.first_k_dense_replace, " on are MoE"));
    if (c.moe_intermediate_size < 1) bad("moe_intermediate_size must be positive for MoE layers");
    if (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.n_routed_experts)
      bad(Cat("num_experts_per_tok = ", c.num_experts_per_tok,
              " must be in [1, n_routed_experts = ", c.n_routed_experts, "]"));
    if (c.n_routed_experts % c.n_group != 0)
      bad(Cat("n_routed_experts = ", c.n_routed_experts,
              " is not divisible by n_group = ", c.n_group));
    if (c.topk_group > c.n_group)
      bad(Cat("topk_group = ", c.topk_group, " exceeds n_group = ", c.n_group));
    if (c.topk_method != TopkMethod::kGreedy &&
        c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok)
      bad(Cat("topk_group = ", c.topk_group, " groups of ", c.n_routed_experts / c.n_group,
              " experts cannot supply num_experts_per_tok = ", c.num_experts_per_tok));
    if (c.topk_method == TopkMethod::kNoauxTc && c.scoring_func != ScoringFunc::kSigmoid)
      bad("topk_method \"noaux_tc\" requires scoring_func \"sigmoid\"");
    if (c.topk_method != TopkMethod::kNoauxTc && c.scoring_func != ScoringFunc::kSoftmax)
      bad("topk_method \"greedy\"/\"group_limited_greedy\" requires scoring_func \"softmax\"");
    if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2)
      bad("noaux_tc sums the top-2 scores of each group: groups need at least 2 experts");
  }
  if (c.routed_scaling_factor <= 0)
    bad(Cat("routed_scaling_factor = ", c.routed_scaling_factor, " must be positive"));
  if (c.rms_norm_eps <= 0) bad(Cat("rms_norm_eps = ", c.rms_norm_eps, " must be positive"));
  if (c.rope_theta <= 1) bad(Cat("rope_theta = ", c.rope_theta, " must exceed 1"));
  if (c.bos_token_id >= c.vocab_size)
    bad(Cat("bos_token_id = ", c.bos_token_id, " >= vocab_size = ", c.vocab_size));
  for (int64_t eos : c.eos_token_ids)
    if (eos < 0 || eos >= c.vocab_size)
      bad(Cat("eos_token_id = ", eos, " outside [0, vocab_size = ", c.vocab_size, ")"));
  if (c.num_nextn_predict_layers > 1)
    bad(Cat("num_nextn_predict_layers = ", c.num_nextn_predict_layers,
            ": DeepSeek-V3 ships one MTP module and only depth 1 is supported"));
}

ModelConfig LoadModelConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  if (!std::filesystem::exists(path)) Fail(model_dir, ": no config.json (not a HF model folder?)");
  return ParseModelConfig(ReadTextFile(path), path);
}

std::string ModelConfigToJson(const ModelConfig& c) {
  const bool v3 = c.model_type == ModelType::kDeepseekV3;
  Json j;
  j["architectures"] = {v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"};
  j["model_type"] = c.model_type_name();
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["aux_loss_alpha"] = c.aux_loss_alpha;
  j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else if (!c.eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_ids;
  }
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = c.initializer_range;
  j["intermediate_size"] = c.intermediate_size;
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["moe_layer_freq"] = c.moe_layer_freq;
  j["n_group"] = c.n_group;
  j["n_routed_experts"] = c.n_routed_experts;
  j["n_shared_experts"] = c.n_shared_experts;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_key_value_heads"] = c.num_key_value_heads;
  if (c.num_nextn_predict_layers > 0) j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["q_lora_rank"] = c.q_lora_rank > 0 ? Json(c.q_lora_rank) : Json(nullptr);
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  if (c.block_quantization) {
    j["quantization_config"] = {{"format", QuantFormatName(c.block_quantization->format)},
                                {"group_size", c.block_quantization->group_size},
                                {"layout", "rows8"},
                                {"quant_method", "whale"}};
  }
  if (c.quantization) {
    j["quantization_config"] = {
        {"activation_scheme", c.quantization->activation_scheme},
        {"fmt", "e4m3"},
        {"quant_method", "fp8"},
        {"weight_block_size", {c.quantization->block_rows, c.quantization->block_cols}}};
  }
  j["rms_norm_eps"] = c.rms_norm_eps;
  if (c.rope_scaling) {
    const auto& y = *c.rope_scaling;
    j["rope_scaling"] = {{"beta_fast", y.beta_fast},
                         {"beta_slow", y.beta_slow},
                         {"factor", y.factor},
                         {"mscale", y.mscale},
                         {"mscale_all_dim", y.mscale_all_dim},
                         {"original_max_position_embeddings", y.original_max_position_embeddings},
                         {"type", "yarn"}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["rope_theta"] = c.rope_theta;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["scoring_func"] = c.scoring_func == ScoringFunc::kSigmoid ? "sigmoid" : "softmax";
  j["seq_aux"] = c.seq_aux;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["topk_group"] = c.topk_group;
  j["topk_method"] = c.topk_method == TopkMethod::kNoauxTc              ? "noaux_tc"
                     : c.topk_method == TopkMethod::kGroupLimitedGreedy ? "group_limited_greedy"
                                                                        : "greedy";
  j["torch_dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  j["v_head_dim"] = c.v_head_dim;
  j["vocab_size"] = c.vocab_size;
  return j.dump(2) + "\n";
}

}  // namespace whale
