// Training ops: cross-entropy over logits with ignored positions (conventions in ops_linear.h).
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

struct CrossEntropyResult {
  double loss = 0;        // mean over the counted positions (0 when there are none)
  int64_t n_counted = 0;  // positions with target >= 0
};

// loss = mean over rows i with targets[i] >= 0 of −log softmax(logits[i])[targets[i]]
// (targets[i] == -1: ignored; anything else outside [0, vocab) throws whale::Error).
// When dlogits is not empty: dlogits[n, vocab] = grad_scale · ∂loss/∂logits, i.e.
// grad_scale / n_counted · (softmax − onehot) on counted rows and 0 on ignored rows (`=`; fused
// softmax, one pass per row). dlogits may be the same memory as logits (in place).
// Softmax and log-sum-exp in T, threaded over rows.
template <typename T>
CrossEntropyResult CrossEntropy(std::span<T> dlogits, std::span<const T> logits,
                                std::span<const int32_t> targets, int64_t n, int64_t vocab,
                                double grad_scale, ThreadPool* pool);

}  // namespace whale
