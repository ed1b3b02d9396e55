// KvCache: one sequence's MLA cache. Per layer and position it holds exactly what absorbed
// attention needs: the normalized latent c_KV (kv_lora_rank) followed by the post-RoPE shared key
// k_pe (qk_rope_head_dim): 576 F32 values per token per layer for V3, nothing else.
#pragma once

#include <cstdint>
#include <span>

#include "util/aligned_buffer.h"

namespace whale {

class KvCache {
 public:
  KvCache() = default;
  // `n_layers` layers of `capacity` positions, each `row_size` values.
  KvCache(int64_t n_layers, int64_t capacity, int64_t row_size);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }  // positions filled: the next token's position
  int64_t n_layers() const { return n_layers_; }
  int64_t row_size() const { return row_size_; }
  size_t bytes() const { return buffer_.size(); }

  // [capacity, row_size] for one layer: row p = [latent(p) | rope_key(p)].
  float* layer(int64_t l) { return buffer_.as<float>().data() + l * capacity_ * row_size_; }
  const float* layer(int64_t l) const {
    return buffer_.as<float>().data() + l * capacity_ * row_size_;
  }

  // Throws Error when `n` more positions do not fit.
  void CheckRoom(int64_t n) const;
  void Advance(int64_t n);
  // Forgets positions >= length (e.g. rejected speculative tokens). length <= length().
  void Truncate(int64_t length);
  void Clear() { length_ = 0; }
  // Makes this cache hold the first `length` positions of `source` (a forked sequence or a
  // prefix-cache hit): copies their rows in every layer. Both caches must have the same layer
  // count and row size, and `length` must fit both.
  void CopyPrefixFrom(const KvCache& source, int64_t length);

 private:
  AlignedBuffer buffer_;  // [n_layers, capacity, row_size]
  int64_t n_layers_ = 0;
  int64_t capacity_ = 0;
  int64_t row_size_ = 0;
  int64_t length_ = 0;
};

}  // namespace whale
