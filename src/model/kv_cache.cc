#include "model/kv_cache.h"

#include <cstring>

#include "util/error.h"

namespace whale {

KvCache::KvCache(int64_t n_layers, int64_t capacity, int64_t row_size)
    : buffer_(static_cast<size_t>(n_layers * capacity * row_size) * sizeof(float)),
      n_layers_(n_layers),
      capacity_(capacity),
      row_size_(row_size) {
  if (capacity <= 0) Fail("KV cache capacity must be positive, got ", capacity);
}

void KvCache::CheckRoom(int64_t n) const {
  if (length_ + n > capacity_)
    Fail("context overflow: the sequence holds ", length_, " tokens and ", n,
         " more do not fit in its context of ", capacity_, " tokens");
}

void KvCache::Advance(int64_t n) {
  WHALE_ASSERT(length_ + n <= capacity_, "advance past capacity");
  length_ += n;
}

void KvCache::Truncate(int64_t length) {
  WHALE_ASSERT(length >= 0 && length <= length_, "truncate to ", length, " of ", length_);
  length_ = length;
}

void KvCache::CopyPrefixFrom(const KvCache& source, int64_t length) {
  if (source.n_layers_ != n_layers_ || source.row_size_ != row_size_)
    Fail("KV cache copy between different shapes: ", source.n_layers_, " layers of ",
         source.row_size_, " values into ", n_layers_, " layers of ", row_size_);
  if (length < 0 || length > source.length_ || length > capacity_)
    Fail("KV cache copy of ", length, " positions from a cache holding ", source.length_,
         " into one of capacity ", capacity_);
  if (this == &source) {
    length_ = length;
    return;
  }
  const size_t bytes = static_cast<size_t>(length * row_size_) * sizeof(float);
  for (int64_t l = 0; l < n_layers_; ++l) {
    if (bytes > 0) std::memcpy(layer(l), source.layer(l), bytes);
  }
  length_ = length;
}

}  // namespace whale
