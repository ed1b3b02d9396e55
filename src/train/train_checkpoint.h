// Training checkpoints: the model in the Hugging Face layout every whale command serves
// (config.json, model.safetensors, tokenizer files), plus the optimizer state that makes
// `--resume` continue bit-identically (trainer_state.json, optimizer.safetensors).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tensor/dtype.h"
#include "train/optimizer.h"
#include "train/train_parameters.h"

namespace whale {

// Writes dir/config.json (ModelConfigToJson, torch_dtype set, no quantization_config) and the
// weights: every tensor of the layout (MTP's shared copies written from the main embedding and
// head), dtype F32 or BF16 (the balancing bias always F32). Copies `tokenizer_json` and, when
// present beside it, tokenizer_config.json and chat_template.jinja (empty path: no tokenizer).
void SaveModelCheckpoint(const std::string& dir, const ParameterSet<float>& params, DType dtype,
                         const std::string& tokenizer_json);

struct TrainerState {
  int64_t step = 0;           // optimizer steps done
  int64_t batches_drawn = 0;  // micro-batches taken from the data source
  double elapsed_s = 0;       // training time before this checkpoint
  nlohmann::json config;      // TrainConfigToJson of the run
};

// Writes dir/trainer_state.json and dir/optimizer.safetensors: the Adam moments ("m." / "v." +
// name), and the F32 master weights ("master." + name) when the model was saved in another
// dtype, so that a resumed run continues from the exact F32 values.
void SaveTrainerState(const std::string& dir, const TrainerState& state, AdamW& optimizer,
                      const ParameterSet<float>& params, bool save_master);

// Reads them back into `optimizer` (and `params`, if master weights were saved). Throws Error
// naming the file when absent or inconsistent with `params`.
TrainerState LoadTrainerState(const std::string& dir, AdamW& optimizer,
                              ParameterSet<float>& params);

}  // namespace whale
