// A deterministic, randomly initialized checkpoint in exact Hugging Face layout, for tests and
// benchmarks (`whale init`). Values depend only on (seed, tensor name, element index), never on
// thread count or write order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "util/thread_pool.h"

namespace whale {

// How weights are stored, as the published checkpoints do: F32 or BF16 everywhere (router bias
// always F32), or FP8: projections in F8_E4M3 with 128x128 block scales, everything else BF16.
enum class StorageType { kF32, kBF16, kFP8 };
StorageType ParseStorageType(const std::string& name);  // "f32", "bf16", "fp8"

struct RandomCheckpointOptions {
  StorageType storage = StorageType::kBF16;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = uint64_t{4} << 30;
  bool config_only = false;    // write config.json alone
  bool show_progress = false;  // a progress line on stderr while writing
};

// Returns the config as written (with torch_dtype and quantization_config set for the storage).
// Writes config.json and the safetensors file(s) into out_dir.
ModelConfig WriteRandomCheckpoint(ModelConfig config, const RandomCheckpointOptions& options,
                                  const std::string& out_dir, ThreadPool& pool);

}  // namespace whale
