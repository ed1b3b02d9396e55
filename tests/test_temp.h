// Scratch folders of a test binary: named for its process under the system temp directory and
// removed when it exits, with any sibling a test derives from one (e.g. a quantized copy DIR-int8).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace whale::testing {

inline std::string TestTempPrefix() {
  return (std::filesystem::temp_directory_path() / ("whale-test-" + std::to_string(::getpid())))
      .string();
}

// Removes every folder starting with TestTempPrefix() + "-" when destroyed (at exit, as a static).
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

// TestTempPrefix() + "-" + name, without its old contents; removed when the process exits.
inline std::string TestTempDir(const std::string& name) {
  static TestTempCleanup cleanup;
  const std::filesystem::path dir = TestTempPrefix() + "-" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace whale::testing
