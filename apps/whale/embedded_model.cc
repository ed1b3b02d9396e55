#include "embedded_model.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "util/error.h"

namespace whale::app {
namespace {

namespace fs = std::filesystem;

fs::path CacheRoot() {
  // XDG Base Directory: a relative $XDG_CACHE_HOME is invalid and ignored.
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') return xdg;
  const char* home = std::getenv("HOME");
  if (!home || home[0] == '\0')
    Fail(
        "cannot place the embedded model: neither XDG_CACHE_HOME nor HOME is set (set one, or "
        "pass --model DIR)");
  return fs::path(home) / ".cache";
}

// Every embedded file is present in `dir` with its size (a complete extraction: directories are
// renamed into place only once written, so a partial one is never seen under the final name).
bool Complete(const fs::path& dir) {
  std::error_code error;
  for (const EmbeddedFile& file : EmbeddedFiles()) {
    const uintmax_t size = fs::file_size(dir / file.name, error);
    if (error || size != static_cast<uintmax_t>(file.end - file.begin)) return false;
  }
  return true;
}

void WriteFile(const fs::path& path, const EmbeddedFile& file) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail(path.string(), ": cannot create (extracting the embedded model)");
  out.write(reinterpret_cast<const char*>(file.begin),
            static_cast<std::streamsize>(file.end - file.begin));
  out.close();
  if (!out) Fail(path.string(), ": write error (extracting the embedded model; disk full?)");
}

std::string Extract() {
  const fs::path parent = CacheRoot() / "whale";
  const fs::path dir = parent / (std::string("whale-tiny-r1-") + EmbeddedModelHash());
  if (Complete(dir)) return dir.string();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) Fail(parent.string(), ": cannot create: ", error.message());
  // A private temporary name per process and moment, so concurrent first runs never share one.
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const fs::path temp = parent / (dir.filename().string() + ".tmp-" + std::to_string(::getpid()) +
                                  "-" + std::to_string(stamp));
  fs::create_directory(temp, error);
  if (error) Fail(temp.string(), ": cannot create: ", error.message());
  try {
    for (const EmbeddedFile& file : EmbeddedFiles()) WriteFile(temp / file.name, file);
  } catch (...) {
    fs::remove_all(temp, error);
    throw;
  }
  fs::rename(temp, dir, error);
  if (error) {
    // Another run got there first (the target exists and is not empty): use its copy. A broken
    // leftover (files deleted by hand) is moved aside and replaced.
    fs::path leftover;
    if (!Complete(dir)) {
      leftover = temp.string() + "-old";
      std::error_code move_error;
      fs::rename(dir, leftover, move_error);
      fs::rename(temp, dir, error);
    }
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    if (!leftover.empty()) fs::remove_all(leftover, ignored);
    if (!Complete(dir))
      Fail(dir.string(), ": cannot place the embedded model there: ", error.message());
  }
  return dir.string();
}

}  // namespace

bool HasEmbeddedModel() {
  return !EmbeddedFiles().empty();
}

std::string EmbeddedModelDir() {
  if (!HasEmbeddedModel())
    Fail(
        "this whale was built without models/whale-tiny-r1 (the embedded default model): pass "
        "--model DIR (a checkpoint in Hugging Face layout)");
  static const std::string dir = Extract();  // once per process; thread-safe initialization
  return dir;
}

std::string ModelDirOrEmbedded(const std::string& model_flag) {
  return model_flag.empty() ? EmbeddedModelDir() : model_flag;
}

}  // namespace whale::app
