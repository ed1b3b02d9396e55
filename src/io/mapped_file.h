// MappedFile: a read-only memory map of a whole file, the owner of checkpoint tensor data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace whale {

class MappedFile {
 public:
  // Throws Error naming the path if the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole file into a string; throws Error naming the path.
std::string ReadTextFile(const std::string& path);
// Writes `contents` to `path` (replacing it); throws Error naming the path.
void WriteTextFile(const std::string& path, std::string_view contents);

}  // namespace whale
