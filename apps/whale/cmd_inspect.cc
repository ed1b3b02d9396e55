// whale inspect: what a model is: layers, attention, experts, parameters, KV cache, storage.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "command.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/summary.h"
#include "model/weights.h"

namespace {

bool HasWeights(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".safetensors" ||
        entry.path().filename() == "model.safetensors.index.json")
      return true;
  return false;
}

std::function<int()> Setup(CLI::App& sub) {
  auto model = std::make_shared<std::string>();
  sub.add_option("--model", *model, "model directory (HF layout; config.json alone is enough)")
      ->required();
  return [model] {
    const whale::ModelConfig config = whale::LoadModelConfig(*model);
    std::optional<whale::Checkpoint> checkpoint;
    if (HasWeights(*model)) {
      checkpoint = whale::Checkpoint::Open(*model);
      whale::ValidateCheckpoint(config, *checkpoint);
    }
    std::printf("%s", whale::DescribeModel(config, checkpoint ? &*checkpoint : nullptr).c_str());
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(inspect, "describe a model: layers, experts, parameter counts, KV cache, storage",
              Setup);
