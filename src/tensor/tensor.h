// Tensor: a non-owning view of typed, strided memory. Row-major: the last index is fastest.
// The memory belongs to an owner that outlives the view: a memory-mapped file (io/mapped_file.h)
// or an aligned buffer (util/aligned_buffer.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "tensor/dtype.h"

namespace whale {

class Tensor {
 public:
  static constexpr int kMaxRank = 8;

  Tensor() = default;
  // A contiguous row-major view of `shape` at `data`.
  Tensor(DType dtype, std::span<const int64_t> shape, const void* data);
  Tensor(DType dtype, std::initializer_list<int64_t> shape, const void* data)
      : Tensor(dtype, std::span<const int64_t>(shape.begin(), shape.size()), data) {}

  DType dtype() const { return dtype_; }
  int rank() const { return rank_; }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t stride(int i) const { return strides_[i]; }  // in elements
  std::span<const int64_t> shape() const { return {shape_.data(), static_cast<size_t>(rank_)}; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * SizeOf(dtype_); }
  bool contiguous() const;
  bool empty() const { return data_ == nullptr; }

  const void* data() const { return data_; }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data_);
  }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(data_); }

  // Row `i` of the first dimension, as a view of rank - 1.
  Tensor Row(int64_t i) const;
  // "[576, 2048]"
  std::string ShapeString() const;

 private:
  DType dtype_ = DType::F32;
  int rank_ = 0;
  std::array<int64_t, kMaxRank> shape_{};
  std::array<int64_t, kMaxRank> strides_{};
  const void* data_ = nullptr;
};

std::string ShapeString(std::span<const int64_t> shape);

}  // namespace whale
