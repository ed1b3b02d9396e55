#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "util/error.h"

namespace whale {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kReadChunk = size_t{64} << 20;

// Reads the file behind `fd` into fresh anonymous memory backed by huge pages where the kernel
// can; returns the mapping (size rounded up to a huge page). The file's page cache is dropped
// chunk by chunk as it is copied, so a model that takes most of the RAM is not held twice.
uint8_t* CopyToHugePages(int fd, size_t size, const std::string& path, size_t* mapped) {
  const size_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
  // Over-allocate by one huge page to place the copy on a 2 MiB boundary.
  void* raw = ::mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) Fail(path, ": cannot allocate ", size, " bytes: ", std::strerror(errno));
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + rounded + kHugePage;
  if (end > aligned + rounded)
    ::munmap(reinterpret_cast<void*>(aligned + rounded), end - aligned - rounded);
  auto* data = reinterpret_cast<uint8_t*>(aligned);
  ::madvise(data, rounded, MADV_HUGEPAGE);
  size_t done = 0;
  while (done < size) {
    const size_t want = std::min(kReadChunk, size - done);
    const ssize_t got = ::pread(fd, data + done, want, static_cast<off_t>(done));
    if (got <= 0) {
      const int err = errno;
      ::munmap(data, rounded);
      Fail(path, ": read failed at byte ", done, " of ", size, ": ",
           got == 0 ? "unexpected end of file" : std::strerror(err));
    }
    ::posix_fadvise(fd, static_cast<off_t>(done), got, POSIX_FADV_DONTNEED);
    done += static_cast<size_t>(got);
  }
  ::mprotect(data, rounded, PROT_READ);  // as read-only as the map would be
  *mapped = rounded;
  return data;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileLoad load) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    Fail(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0 && load == FileLoad::kHugeCopy) {
    try {
      data_ = CopyToHugePages(fd, size_, path, &mapped_);
    } catch (...) {
      ::close(fd);
      throw;
    }
  } else if (size_ > 0) {
    mapped_ = size_;
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      Fail(path, ": cannot map ", size_, " bytes: ", std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(map);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), mapped_);
}

std::string ReadTextFile(const std::string& path) {
  // Through the map, so that a directory or a device is refused with a clear message instead
  // of reading as an empty stream.
  const MappedFile file(path);
  const auto bytes = file.bytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void WriteTextFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail(path, ": cannot create: ", std::strerror(errno));
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) Fail(path, ": write error");
}

}  // namespace whale
