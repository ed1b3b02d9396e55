#include "tensor/tensor.h"

#include "util/error.h"

namespace whale {

Tensor::Tensor(DType dtype, std::span<const int64_t> shape, const void* data)
    : dtype_(dtype), rank_(static_cast<int>(shape.size())), data_(data) {
  WHALE_ASSERT(shape.size() <= static_cast<size_t>(kMaxRank), "rank ", shape.size());
  int64_t stride = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    WHALE_ASSERT(shape[i] >= 0, "negative dimension ", shape[i]);
    shape_[i] = shape[i];
    strides_[i] = stride;
    stride *= shape[i];
  }
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= shape_[i];
  return n;
}

bool Tensor::contiguous() const {
  int64_t stride = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != stride) return false;
    stride *= shape_[i];
  }
  return true;
}

Tensor Tensor::Row(int64_t i) const {
  WHALE_ASSERT(rank_ >= 1 && i >= 0 && i < shape_[0], "row ", i, " of ", ShapeString());
  Tensor row;
  row.dtype_ = dtype_;
  row.rank_ = rank_ - 1;
  for (int d = 1; d < rank_; ++d) {
    row.shape_[d - 1] = shape_[d];
    row.strides_[d - 1] = strides_[d];
  }
  row.data_ = bytes() + static_cast<size_t>(i * strides_[0]) * SizeOf(dtype_);
  return row;
}

std::string Tensor::ShapeString() const {
  return whale::ShapeString(shape());
}

std::string ShapeString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace whale
