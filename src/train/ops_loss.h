// Training ops: cross-entropy over logits with ignored positions (conventions in ops_linear.h).
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

struct CrossEntropyResult {
  double loss = 0;        // mean (or weighted sum) over the counted positions (0 when none)
  int64_t n_counted = 0;  // positions with target >= 0
};

// loss = mean over rows i with targets[i] >= 0 of −log softmax(logits[i])[targets[i]]
// (targets[i] == -1: ignored; anything else outside [0, vocab) throws whale::Error).
// When dlogits is not empty: dlogits[n, vocab] = grad_scale · ∂loss/∂logits, i.e.
// grad_scale / n_counted · (softmax − onehot) on counted rows and 0 on ignored rows (`=`; fused
// softmax, one pass per row). dlogits may be the same memory as logits (in place).
// Softmax and log-sum-exp in T, threaded over rows.
//
// row_weights (empty, or [n]): the loss becomes the weighted sum Σ_i w_i·CE_i over counted rows
// (no division by the count) and dlogits = grad_scale · w_i · (softmax − onehot). With
// w_i = −∂L/∂log p_i this backpropagates any objective L of the targets' log-probabilities
// (GRPO: train/grpo_loss.h). Weights may be negative; a weight on an ignored row must be 0.
template <typename T>
CrossEntropyResult CrossEntropy(std::span<T> dlogits, std::span<const T> logits,
                                std::span<const int32_t> targets, int64_t n, int64_t vocab,
                                double grad_scale, ThreadPool* pool,
                                std::span<const float> row_weights = {});

}  // namespace whale
