// MappedFile: the bytes of a whole file, read-only, the owner of checkpoint tensor data: a memory
// map of the file, or a copy in anonymous memory backed by 2 MiB pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace whale {

enum class FileLoad {
  kMap,       // mmap the file: nothing read up front, pages shared with the page cache
  kHugeCopy,  // read it into 2 MiB-aligned anonymous memory with MADV_HUGEPAGE. A matrix
              // product streams weights at up to ~2x the rate of 4 KiB page-cache pages on the
              // development machine (the hardware prefetcher stops at every 4 KiB boundary and
              // every page costs a TLB walk), at the price of reading the file at load time.
};

class MappedFile {
 public:
  // Throws Error naming the path if the file cannot be opened, mapped or read.
  explicit MappedFile(const std::string& path, FileLoad load = FileLoad::kMap);
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
  size_t mapped_ = 0;  // bytes of the mapping (the copy is rounded up to whole huge pages)
};

// Reads a whole file into a string; throws Error naming the path.
std::string ReadTextFile(const std::string& path);
// Writes `contents` to `path` (replacing it); throws Error naming the path.
void WriteTextFile(const std::string& path, std::string_view contents);

}  // namespace whale
