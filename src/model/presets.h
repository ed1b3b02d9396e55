// Named model configurations for `whale init`: tiny models for tests, a ~1B model for quick
// benchmarks, and the published DeepSeek-V2-Lite and DeepSeek-V3 shapes.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace whale {

struct Preset {
  std::string name;
  std::string description;
  ModelConfig config;
};

const std::vector<Preset>& Presets();
// Throws Error listing the known names if `name` is not one of them.
const Preset& FindPreset(const std::string& name);

}  // namespace whale
