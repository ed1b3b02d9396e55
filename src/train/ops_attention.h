// Training ops: causal multi-head softmax attention over packed sequences with document
// segments (conventions in ops_linear.h).
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

// Shapes of one attention call: n_seqs sequences of seq_len tokens, rows ordered [seq, token].
struct AttentionShape {
  int64_t n_seqs, seq_len, heads, qk_dim, v_dim;
  double scale;  // softmax scale (1/sqrt(qk_dim) times YaRN's mscale², chosen by the caller)
};

// Query t of a sequence attends to keys s <= t of the same sequence with segments[s] ==
// segments[t]; a document's first token attends only to itself.
//   q, k:  [n_seqs * seq_len, heads, qk_dim]
//   v:     [n_seqs * seq_len, heads, v_dim]
//   segments: [n_seqs * seq_len]
//   out:   [n_seqs * seq_len, heads, v_dim] = softmax(scale · q·kᵀ + mask) · v
//   lse:   [n_seqs * seq_len, heads] saved: log Σ_s exp(scale · q·k_s) over the attended keys,
//          from which the backward recomputes the probabilities (no [T, T] matrix is kept).
// Threaded over (sequence, head) pairs. float: each head's scores and products are kernels/gemm.h
// Gemm calls over the causal lower triangle in blocks of 64 queries (a block's masked corner is
// computed, then zeroed); double: plain loops over the attended keys only (the reference the float
// path is tested against).
template <typename T>
void AttentionForward(std::span<T> out, std::span<T> lse, std::span<const T> q,
                      std::span<const T> k, std::span<const T> v, std::span<const int32_t> segments,
                      const AttentionShape& shape, ThreadPool* pool);

// dq, dk (same layout as q, k) and dv (as v), all `=`, from dout (as out) and the saved lse.
template <typename T>
void AttentionBackward(std::span<T> dq, std::span<T> dk, std::span<T> dv, std::span<const T> dout,
                       std::span<const T> q, std::span<const T> k, std::span<const T> v,
                       std::span<const T> out, std::span<const T> lse,
                       std::span<const int32_t> segments, const AttentionShape& shape,
                       ThreadPool* pool);

}  // namespace whale
