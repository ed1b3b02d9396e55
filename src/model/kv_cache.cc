#include "model/kv_cache.h"

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

}  // namespace whale
