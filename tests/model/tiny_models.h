// Tiny random checkpoints written once per test binary into a temporary folder.
#pragma once

#include <unistd.h>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>

#include "../test_temp.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace whale::testing {

inline std::string TinyModelDir(const std::string& preset, StorageType storage) {
  static TestTempCleanup cleanup;
  static std::map<std::string, std::string> made;
  const std::string key = preset + "-" + std::to_string(static_cast<int>(storage));
  if (auto it = made.find(key); it != made.end()) return it->second;
  const std::string dir = TestTempPrefix() + "-" + key;
  ThreadPool pool(1);
  RandomCheckpointOptions options;
  options.storage = storage;
  options.seed = 11;
  WriteRandomCheckpoint(FindPreset(preset).config, options, dir, pool);
  made[key] = dir;
  return dir;
}

}  // namespace whale::testing
