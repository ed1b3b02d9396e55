// Rewriting a checkpoint in whale's int8 / int4 block formats (kernels/quant.h): what
// `whale quantize` does.
#pragma once

#include <string>

#include "kernels/quant.h"
#include "model/config.h"
#include "util/thread_pool.h"

namespace whale {

// Reads the checkpoint in `in_dir` (F32, BF16 or FP8 with block scales; FP8 is dequantized with
// its scales first), quantizes every tensor BlockQuantizedFormat selects (layout.h: the linear
// projections to `format`, the output heads to int8) and copies the rest unchanged, into
// `out_dir`: shards of at most the input's largest shard size (one file if the input is one
// file), a config.json with the whale quantization_config, safetensors `__metadata__` describing
// the format, and every other file of `in_dir` (tokenizer, chat template, generation config)
// copied. Returns the config written. Throws Error naming the tensor for non-finite weights, and
// for an input that is already block-quantized or is out_dir.
ModelConfig QuantizeCheckpoint(const std::string& in_dir, const std::string& out_dir,
                               QuantFormat format, ThreadPool& pool, bool show_progress);

}  // namespace whale
