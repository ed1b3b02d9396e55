// AlignedBuffer: an owning, zero-initialized block of memory aligned for SIMD loads and, when
// large, backed by transparent huge pages. The owner of activations, KV caches and scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace whale {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  std::span<T> as() {
    return {static_cast<T*>(data_), size_ / sizeof(T)};
  }
  template <typename T>
  std::span<const T> as() const {
    return {static_cast<const T*>(data_), size_ / sizeof(T)};
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace whale
