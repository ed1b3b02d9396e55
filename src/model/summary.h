// A human-readable description of a model: what `whale inspect` prints. Works from config.json
// alone, and adds storage details when the weights are present.
#pragma once

#include <string>

#include "io/safetensors.h"
#include "model/config.h"

namespace whale {

// `checkpoint` may be null (config only).
std::string DescribeModel(const ModelConfig& config, const Checkpoint* checkpoint);

// "671.03 B", "2.40 M": parameter counts with decimal prefixes.
std::string HumanCount(double count);

}  // namespace whale
