// Training ops: the linear layer y = x · Wᵀ and its backward, and the token embedding.
//
// Conventions for every ops_*.h: free functions over row-major spans (last index fastest),
// outputs first, saved tensors passed explicitly. Templated on the scalar type (float and double
// are instantiated) so that gradients can be checked by finite differences in double. Input
// gradients are written with `=` unless stated otherwise; parameter gradients are accumulated with
// `+=` (a parameter used several times, or over micro-batches, sums its gradients). Sizes are
// checked: a mismatch throws whale::Error naming the op, the span and the expected size.
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

// y[n, out] = x[n, in] · w[out, in]ᵀ.
// float: kernels/gemm.h Gemm (threaded); double: plain loops (pool unused).
template <typename T>
void LinearForward(std::span<T> y, std::span<const T> x, std::span<const T> w, int64_t n,
                   int64_t in, int64_t out, ThreadPool* pool);

// dx[n, in] (= or += per accumulate_dx) dy[n, out] · w[out, in]; skipped when dx is empty.
// dw[out, in] += dy[n, out]ᵀ · x[n, in]; skipped when dw is empty (a frozen weight).
template <typename T>
void LinearBackward(std::span<T> dx, std::span<T> dw, std::span<const T> dy, std::span<const T> x,
                    std::span<const T> w, int64_t n, int64_t in, int64_t out, bool accumulate_dx,
                    ThreadPool* pool);

// out[n, dim] = table[ids[i], :]. Throws whale::Error on an id outside [0, vocab).
template <typename T>
void EmbeddingForward(std::span<T> out, std::span<const int32_t> ids, std::span<const T> table,
                      int64_t vocab, int64_t dim);

// dtable[vocab, dim] += scatter of dout[n, dim] to rows ids[i] (repeated ids add up).
template <typename T>
void EmbeddingBackward(std::span<T> dtable, std::span<const T> dout, std::span<const int32_t> ids,
                       int64_t vocab, int64_t dim);

}  // namespace whale
