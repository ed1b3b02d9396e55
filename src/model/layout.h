// The checkpoint layout: every tensor a DeepSeek-V2/V3 Hugging Face checkpoint holds for a given
// config, by name, with its shape and role. One list serves the loader (what must be present),
// `whale init` (what to write) and `whale inspect` (what to count).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"

namespace whale {

enum class TensorRole {
  kEmbedding,     // [vocab, hidden]
  kOutputHead,    // [vocab, hidden]
  kNorm,          // [dim] RMSNorm weight
  kLinear,        // [out, in] projection; FP8 with block scales in FP8 checkpoints
  kRouter,        // [n_routed_experts, hidden]; never FP8
  kRouterBias,    // [n_routed_experts] e_score_correction_bias; F32
  kMtpProjection  // eh_proj [hidden, 2*hidden]; never FP8
};

// Which part of the model a tensor belongs to, for parameter accounting.
enum class TensorGroup { kMain, kMtp };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  TensorGroup group;
  int64_t layer = -1;        // -1 for globals
  int64_t expert = -1;       // routed expert index, or -1
  bool shared_copy = false;  // MTP's stored copy of the embedding or head
  int64_t numel() const;
};

// Every weight tensor (not the FP8 `_scale_inv` companions) in HF naming order.
std::vector<TensorSpec> CheckpointLayout(const ModelConfig& config);

// Name of the block-scale companion of an FP8 weight.
std::string ScaleName(const std::string& weight_name);
// Shape of the block-scale tensor of a [rows, cols] weight: ceil division at the edges.
std::vector<int64_t> ScaleShape(const std::vector<int64_t>& weight_shape, int64_t block_rows,
                                int64_t block_cols);

// whale's block-quantized checkpoints (config.block_quantization; format in kernels/quant.h):
// linear projections and the MTP eh_proj are stored as one tensor `<name>` of codes and F16
// scales, I8 (int8) or U8 (int4) [ceil(rows / 8), QuantBlockBytes(cols)]: rows interleaved 8 at
// a time, groups of 32 columns. The output heads are int8 in both formats: a decode step reads
// the whole [vocab, hidden] head, and the logits are the most sensitive product (llama.cpp's
// 4-bit types likewise keep the output tensor at 6 bits or more). Returns the format a tensor of
// `role` is stored in, or nothing for tensors kept as they are (embeddings, norms, router).
std::optional<QuantFormat> BlockQuantizedFormat(TensorRole role, QuantFormat checkpoint_format);
std::vector<int64_t> BlockQuantizedShape(QuantFormat format, const std::vector<int64_t>& shape);

// Parameter counts derived from the layout.
struct ParameterCounts {
  int64_t main_total = 0;   // embedding + main layers + final norm + head
  int64_t main_active = 0;  // per token: all but the routed experts not selected
  int64_t embedding = 0;    // the input embedding: a row lookup per token, no arithmetic
  // Active parameters that do arithmetic per token: the convention of the DeepSeek papers'
  // "activated parameters" (V2-Lite 2.4B; V3 37B).
  int64_t main_active_compute() const { return main_active - embedding; }
  int64_t mtp_unique = 0;  // MTP block and its own projections, norms
  int64_t mtp_copies = 0;  // MTP's stored copies of embedding and head
  int64_t routed_expert_total = 0;
  int64_t stored_total() const { return main_total + mtp_unique + mtp_copies; }
};
ParameterCounts CountParameters(const ModelConfig& config);

}  // namespace whale
