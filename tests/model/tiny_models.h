// Tiny random checkpoints written once per test binary into a temporary folder.
#pragma once

#include <unistd.h>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>

#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace whale::testing {

// Every folder under the system temp directory named for this process; removed at exit, with the
// siblings tests derive from them (e.g. quantized copies named DIR-int8).
inline std::string TestTempPrefix() {
  return (std::filesystem::temp_directory_path() / ("whale-test-" + std::to_string(::getpid())))
      .string();
}

struct TestTempCleanup {
  ~TestTempCleanup() {
    const std::string prefix = std::filesystem::path(TestTempPrefix()).filename().string() + "-";
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), error))
      if (entry.path().filename().string().rfind(prefix, 0) == 0)
        std::filesystem::remove_all(entry.path(), error);
  }
};

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
