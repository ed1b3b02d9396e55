#include "model/weights.h"

#include <map>
#include <set>

#include "model/layout.h"
#include "util/error.h"

namespace whale {
namespace {

bool Allowed(TensorRole role, DType dtype) {
  switch (role) {
    case TensorRole::kLinear:
      return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F8_E4M3;
    case TensorRole::kRouterBias:
      return dtype == DType::F32;
    default:
      return dtype == DType::F32 || dtype == DType::BF16;
  }
}

const char* AllowedText(TensorRole role) {
  switch (role) {
    case TensorRole::kLinear:
      return "F32, BF16 or F8_E4M3";
    case TensorRole::kRouterBias:
      return "F32";
    default:
      return "F32 or BF16";
  }
}

class Mapper {
 public:
  Mapper(const ModelConfig& config, const Checkpoint& checkpoint)
      : config_(config), checkpoint_(checkpoint) {
    for (const TensorSpec& spec : CheckpointLayout(config)) shapes_[spec.name] = spec.shape;
  }

  WeightMatrix Matrix(const std::string& name) const {
    const Tensor t = checkpoint_.Get(name);
    WeightMatrix m;
    m.dtype = t.dtype();
    m.data = t.data();
    m.rows = t.dim(0);
    m.cols = t.dim(1);
    if (t.dtype() == DType::F8_E4M3) {
      m.block_scales = checkpoint_.Get(ScaleName(name)).data_as<float>();
      m.fp8_nan_free = !Fp8HasNanCode(
          std::span<const uint8_t>(static_cast<const uint8_t*>(t.data()), t.numel()));
    }
    if (t.dtype() == DType::I8 || t.dtype() == DType::U8) {
      // The stored codes are [blocks, groups, bytes] (kernels/quant.h): the logical shape is
      // the layout's.
      m.rows = shapes_.at(name)[0];
      m.cols = shapes_.at(name)[1];
    }
    return m;
  }
  NormWeight Norm(const std::string& name) const {
    const Tensor t = checkpoint_.Get(name);
    return {t.dtype(), t.data(), t.dim(0)};
  }
  MlpWeights Mlp(const std::string& prefix) const {
    return {Matrix(prefix + "gate_proj.weight"), Matrix(prefix + "up_proj.weight"),
            Matrix(prefix + "down_proj.weight")};
  }
  BlockWeights Block(int64_t layer, bool moe) const {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    BlockWeights b;
    b.input_norm = Norm(p + "input_layernorm.weight");
    b.post_attention_norm = Norm(p + "post_attention_layernorm.weight");
    MlaWeights& a = b.attention;
    if (config_.q_lora_rank > 0) {
      a.q_a = Matrix(p + "self_attn.q_a_proj.weight");
      a.q_a_norm = Norm(p + "self_attn.q_a_layernorm.weight");
      a.q_b = Matrix(p + "self_attn.q_b_proj.weight");
    } else {
      a.q = Matrix(p + "self_attn.q_proj.weight");
    }
    a.kv_a = Matrix(p + "self_attn.kv_a_proj_with_mqa.weight");
    a.kv_a_norm = Norm(p + "self_attn.kv_a_layernorm.weight");
    a.kv_b = Matrix(p + "self_attn.kv_b_proj.weight");
    a.o = Matrix(p + "self_attn.o_proj.weight");
    b.is_moe = moe;
    if (!moe) {
      b.dense = Mlp(p + "mlp.");
      return b;
    }
    b.moe.router = Matrix(p + "mlp.gate.weight");
    if (config_.topk_method == TopkMethod::kNoauxTc)
      b.moe.bias = checkpoint_.Get(p + "mlp.gate.e_score_correction_bias").data_as<float>();
    for (int64_t e = 0; e < config_.n_routed_experts; ++e)
      b.moe.experts.push_back(Mlp(p + "mlp.experts." + std::to_string(e) + "."));
    if (config_.n_shared_experts > 0) b.moe.shared = Mlp(p + "mlp.shared_experts.");
    return b;
  }

 private:
  const ModelConfig& config_;
  const Checkpoint& checkpoint_;
  std::map<std::string, std::vector<int64_t>> shapes_;  // logical [rows, cols] by name
};

// Weights are read in place, so each must start at an address aligned for its element type.
// Files written by Hugging Face's safetensors (and by whale) order tensors by decreasing element
// size and always are; a file that is not gets a clear error instead of misaligned loads.
void CheckAligned(const Checkpoint& checkpoint, const std::string& name) {
  const Tensor t = checkpoint.Get(name);
  const auto address = reinterpret_cast<uintptr_t>(t.data());
  if (address % SizeOf(t.dtype()) != 0)
    Fail(checkpoint.FileOf(name), ": tensor '", name, "' (", Name(t.dtype()),
         ") starts at a byte offset that is not a multiple of its element size; whale maps "
         "weights in place and needs them aligned (rewrite the file with Hugging Face's "
         "safetensors)");
}

// A tensor of a whale block-quantized checkpoint: codes and scales as kernels/quant.h describes.
void ValidateBlockQuantized(QuantFormat format, const Checkpoint& checkpoint,
                            const TensorSpec& spec) {
  const DType dtype = format == QuantFormat::kInt8 ? DType::I8 : DType::U8;
  const SafetensorsEntry& entry = checkpoint.Entry(spec.name);
  const auto shape = BlockQuantizedShape(format, spec.shape);
  if (entry.dtype != dtype || entry.shape != shape)
    Fail(checkpoint.FileOf(spec.name), ": tensor '", spec.name, "' is ", Name(entry.dtype), " ",
         ShapeString(entry.shape), "; expected ", Name(dtype), " ", ShapeString(shape), " (whale ",
         QuantFormatName(format), " codes of the ", ShapeString(spec.shape), " weight: blocks of ",
         kQuantRowBlock, " rows, each with the codes and F16 scales of ",
         QuantGroups(spec.shape[1]), " groups of ", kQuantGroup, " columns)");
  CheckAligned(checkpoint, spec.name);
}

}  // namespace

void ValidateCheckpoint(const ModelConfig& config, const Checkpoint& checkpoint) {
  const std::string& dir = checkpoint.dir();
  if (config.quantization &&
      (config.quantization->block_rows != 128 || config.quantization->block_cols != 128))
    Fail(dir, ": quantization_config.weight_block_size [", config.quantization->block_rows, ", ",
         config.quantization->block_cols, "] is not supported (expected [128, 128])");
  std::set<std::string> expected;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    expected.insert(spec.name);
    if (!checkpoint.Has(spec.name))
      Fail(dir, ": missing tensor '", spec.name, "' (config expects shape ",
           ShapeString(spec.shape), ")");
    const SafetensorsEntry& entry = checkpoint.Entry(spec.name);
    const std::optional<QuantFormat> format =
        config.block_quantization
            ? BlockQuantizedFormat(spec.role, config.block_quantization->format)
            : std::nullopt;
    // Checkpoints quantized before the output head was kept their head in F32 or BF16.
    const bool kept_head = spec.role == TensorRole::kOutputHead &&
                           (entry.dtype == DType::F32 || entry.dtype == DType::BF16);
    if (format && !kept_head) {
      ValidateBlockQuantized(*format, checkpoint, spec);
      continue;
    }
    if (entry.shape != spec.shape)
      Fail(checkpoint.FileOf(spec.name), ": tensor '", spec.name, "' has shape ",
           ShapeString(entry.shape), " but config.json implies ", ShapeString(spec.shape));
    if (!Allowed(spec.role, entry.dtype))
      Fail(checkpoint.FileOf(spec.name), ": tensor '", spec.name, "' is ", Name(entry.dtype),
           "; expected ", AllowedText(spec.role));
    CheckAligned(checkpoint, spec.name);
    if (entry.dtype != DType::F8_E4M3) continue;
    const std::string scale = ScaleName(spec.name);
    expected.insert(scale);
    if (!checkpoint.Has(scale))
      Fail(dir, ": FP8 tensor '", spec.name, "' has no block scales '", scale, "'");
    const SafetensorsEntry& scale_entry = checkpoint.Entry(scale);
    const auto scale_shape = ScaleShape(spec.shape, 128, 128);
    if (scale_entry.dtype != DType::F32 || scale_entry.shape != scale_shape)
      Fail(checkpoint.FileOf(scale), ": tensor '", scale, "' is ", Name(scale_entry.dtype), " ",
           ShapeString(scale_entry.shape), "; expected F32 ", ShapeString(scale_shape),
           " (one scale per 128x128 block of ", ShapeString(spec.shape), ")");
    CheckAligned(checkpoint, scale);
  }
  for (const std::string& name : checkpoint.Names())
    if (!expected.count(name))
      Fail(checkpoint.FileOf(name), ": unexpected tensor '", name, "' for this ",
           config.model_type_name(), " config");
}

Weights Weights::Load(const std::string& dir) {
  return Load(LoadModelConfig(dir), Checkpoint::Open(dir, Checkpoint::Load::kAuto));
}

Weights Weights::Load(const ModelConfig& config, Checkpoint checkpoint) {
  ValidateCheckpoint(config, checkpoint);
  Weights w;
  w.config_ = config;
  w.checkpoint_ = std::move(checkpoint);
  const Mapper map(w.config_, w.checkpoint_);
  w.embed = map.Matrix("model.embed_tokens.weight");
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    w.layers.push_back(map.Block(l, config.is_moe_layer(l)));
  w.final_norm = map.Norm("model.norm.weight");
  w.lm_head = config.tie_word_embeddings ? w.embed : map.Matrix("lm_head.weight");
  if (config.num_nextn_predict_layers > 0) {
    const int64_t l = config.num_hidden_layers;
    const std::string p = "model.layers." + std::to_string(l) + ".";
    MtpWeights mtp;
    mtp.embed = map.Matrix(p + "embed_tokens.weight");
    mtp.enorm = map.Norm(p + "enorm.weight");
    mtp.hnorm = map.Norm(p + "hnorm.weight");
    mtp.eh_proj = map.Matrix(p + "eh_proj.weight");
    mtp.block = map.Block(l, /*moe=*/true);
    mtp.head_norm = map.Norm(p + "shared_head.norm.weight");
    mtp.head = map.Matrix(p + "shared_head.head.weight");
    w.mtp = std::move(mtp);
  }
  return w;
}

}  // namespace whale
