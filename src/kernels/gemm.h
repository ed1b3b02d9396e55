// General F32 matrix product for training: C = op(A) · op(B), optionally added to C.
//
// Row-major throughout (the last index is fastest). op(X) is X or Xᵀ as stored, so the three
// products of a linear layer (y = x·Wᵀ, dx = dy·W, dW += dyᵀ·x) need no explicit transposes.
#pragma once

#include <cstdint>
#include <span>

#include "util/thread_pool.h"

namespace whale {

// How a GEMM operand is stored.
enum class Trans { kNo, kYes };

// c[m, n] = op(a)[m, k] · op(b)[k, n]            (accumulate == false)
// c[m, n] += op(a)[m, k] · op(b)[k, n]           (accumulate == true)
// a is stored [m, k] (Trans::kNo) or [k, m] (Trans::kYes); b is stored [k, n] or [n, k].
// Blocked and packed (panels of op(a) and op(b) copied to contiguous scratch, so the four layouts
// share one kernel), SIMD through Highway (the build's baseline target) with fused multiply-adds,
// threaded over tiles of c (128 × 256, smaller when c has too few for every thread to get several).
// Each element of c is a sum over k in ascending order within
// a k-block of kGemmKBlock, the blocks added to c in ascending order: results do not depend on
// the thread count. With k == 0, c is zeroed (or left as is when accumulating). c must not
// overlap a or b. pool may be nullptr; Gemm may be called from inside a ParallelFor body with
// pool == nullptr (scratch is per thread). Throws whale::Error on negative sizes or spans whose
// sizes are not exactly m*k, k*n and m*n.
void Gemm(std::span<float> c, std::span<const float> a, std::span<const float> b, int64_t m,
          int64_t n, int64_t k, Trans trans_a, Trans trans_b, bool accumulate, ThreadPool* pool);

// The reference: every element a sum of products in double, one rounding to F32 (plus the old
// value of c, in double, when accumulating).
void GemmRef(std::span<float> c, std::span<const float> a, std::span<const float> b, int64_t m,
             int64_t n, int64_t k, Trans trans_a, Trans trans_b, bool accumulate);

// The k-block of Gemm's summation order (see above).
inline constexpr int64_t kGemmKBlock = 256;

}  // namespace whale
