// Tiny random checkpoints written once per test binary into a temporary folder.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace whale::testing {

inline std::string TinyModelDir(const std::string& preset, StorageType storage) {
  static std::map<std::string, std::string> made;
  const std::string key = preset + "-" + std::to_string(static_cast<int>(storage));
  if (auto it = made.find(key); it != made.end()) return it->second;
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("whale-test-" + std::to_string(::getpid()) + "-" + key))
                              .string();
  ThreadPool pool(1);
  RandomCheckpointOptions options;
  options.storage = storage;
  options.seed = 11;
  WriteRandomCheckpoint(FindPreset(preset).config, options, dir, pool);
  made[key] = dir;
  return dir;
}

}  // namespace whale::testing
