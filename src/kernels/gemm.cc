#include "kernels/gemm.h"

// One target, the build's baseline: the build is tuned for its machine (WHALE_NATIVE) and
// Highway 1.0.3 cannot dispatch to every baseline -march=native yields (e.g. AVX3_ZEN4).
#define HWY_COMPILE_ONLY_STATIC 1
#include <hwy/highway.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "util/error.h"

namespace whale {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// The micro-kernel keeps a kMr × kNr tile of c in registers (kMr · 2 vectors) and, for each p of
// the k-block, loads two vectors of packed b and broadcasts kMr values of packed a.
constexpr int64_t kLanes = HWY_LANES(float);
constexpr int64_t kMr = 8;
constexpr int64_t kNr = 2 * kLanes;
// Rows and columns of c per parallel task. A task's packed a (kMc × kGemmKBlock) stays in L2 and
// each packed b micro-panel (kGemmKBlock × kNr) in L1 while the task sweeps over it.
constexpr int64_t kMc = 128;
constexpr int64_t kNc = 256;
// A small c (a weight gradient dW = dyᵀ·x of a narrow layer is 128 × 256: one kMc × kNc tile)
// would leave all but one thread idle, so on several threads tiles shrink, down to these, until
// each thread has kTasksPerThread of them to claim (which also evens out a thread that another
// process delays). The tiling does not change any element's summation order.
constexpr int64_t kMinMc = 32;
constexpr int64_t kMinNc = 64;
constexpr int64_t kTasksPerThread = 4;
// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 18;

int64_t RoundUp(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

// Scratch reused across calls on one thread (the caller's: workers only see pointers into it),
// at least `size` floats. It only grows: resizing it to each call's size would zero-fill the
// difference whenever a call needs more than the one before (a memset per call in attention,
// which alternates small and large products).
float* ThreadScratch(int which, int64_t size) {
  thread_local std::vector<float> scratch[2];
  std::vector<float>& v = scratch[which];
  if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  return v.data();
}

// The operand views: op(a)(i, p) and op(b)(p, j).
struct Operands {
  const float* a;
  const float* b;
  int64_t m, n, k;
  bool trans_a, trans_b;
};

// Packs rows [i0, i0 + kMr) × columns [p0, p0 + kc) of op(a) as [kc][kMr], zero past row m.
void PackA(float* dst, const Operands& o, int64_t i0, int64_t p0, int64_t kc) {
  const int64_t rows = std::min(kMr, o.m - i0);
  if (rows < kMr) std::fill(dst, dst + kc * kMr, 0.0f);
  if (o.trans_a) {  // a stored [k, m]: each p reads kMr contiguous values
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = o.a + (p0 + p) * o.m + i0;
      for (int64_t i = 0; i < rows; ++i) dst[p * kMr + i] = src[i];
    }
  } else {  // a stored [m, k]: each row contiguous
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = o.a + (i0 + i) * o.k + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * kMr + i] = src[p];
    }
  }
}

// Packs rows [p0, p0 + kc) × columns [j0, j0 + kNr) of op(b) as [kc][kNr], zero past column n.
void PackB(float* dst, const Operands& o, int64_t j0, int64_t p0, int64_t kc) {
  const int64_t cols = std::min(kNr, o.n - j0);
  if (cols < kNr) std::fill(dst, dst + kc * kNr, 0.0f);
  if (o.trans_b) {  // b stored [n, k]: each column of op(b) contiguous
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = o.b + (j0 + j) * o.k + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * kNr + j] = src[p];
    }
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = o.b + (p0 + p) * o.n + j0;
      std::copy(src, src + cols, dst + p * kNr);
    }
  }
}

// c[rows, cols] (= or +=) the kMr × kNr product of one packed a and one packed b micro-panel.
void MicroKernel(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* HWY_RESTRICT ap,
                 const float* HWY_RESTRICT bp, int64_t kc, bool add) {
  const D d;
  V acc0[kMr], acc1[kMr];
  for (int64_t i = 0; i < kMr; ++i) acc0[i] = acc1[i] = hn::Zero(d);
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = hn::LoadU(d, bp + p * kNr);
    const V b1 = hn::LoadU(d, bp + p * kNr + kLanes);
    for (int64_t i = 0; i < kMr; ++i) {
      const V a = hn::Set(d, ap[p * kMr + i]);
      acc0[i] = hn::MulAdd(a, b0, acc0[i]);
      acc1[i] = hn::MulAdd(a, b1, acc1[i]);
    }
  }
  if (rows == kMr && cols == kNr) {
    for (int64_t i = 0; i < kMr; ++i) {
      float* row = c + i * ldc;
      if (add) {
        hn::StoreU(hn::Add(hn::LoadU(d, row), acc0[i]), d, row);
        hn::StoreU(hn::Add(hn::LoadU(d, row + kLanes), acc1[i]), d, row + kLanes);
      } else {
        hn::StoreU(acc0[i], d, row);
        hn::StoreU(acc1[i], d, row + kLanes);
      }
    }
    return;
  }
  alignas(64) float tile[kMr * kNr];
  for (int64_t i = 0; i < kMr; ++i) {
    hn::Store(acc0[i], d, tile + i * kNr);
    hn::Store(acc1[i], d, tile + i * kNr + kLanes);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      c[i * ldc + j] = add ? c[i * ldc + j] + tile[i * kNr + j] : tile[i * kNr + j];
}

// The task tile (rows, columns of c) for `threads` threads.
std::pair<int64_t, int64_t> TaskTile(int64_t m, int64_t n, int threads) {
  int64_t mc = kMc, nc = kNc;
  const auto tasks = [&] { return RoundUp(m, mc) / mc * (RoundUp(n, nc) / nc); };
  while (threads > 1 && tasks() < kTasksPerThread * threads) {
    // Halve the side that covers more of its dimension, keeping tiles squarish.
    const bool rows = mc > kMinMc && (std::min(mc, m) * 2 >= std::min(nc, n) || nc <= kMinNc);
    if (rows)
      mc /= 2;
    else if (nc > kMinNc)
      nc /= 2;
    else
      break;
  }
  return {mc, nc};
}

}  // namespace

void Gemm(std::span<float> c, std::span<const float> a, std::span<const float> b, int64_t m,
          int64_t n, int64_t k, Trans trans_a, Trans trans_b, bool accumulate, ThreadPool* pool) {
  if (m < 0 || n < 0 || k < 0) Fail("Gemm: negative size m=", m, " n=", n, " k=", k);
  if (static_cast<int64_t>(a.size()) != m * k || static_cast<int64_t>(b.size()) != k * n ||
      static_cast<int64_t>(c.size()) != m * n)
    Fail("Gemm: spans of ", a.size(), ", ", b.size(), " and ", c.size(),
         " floats; expected m*k=", m * k, ", k*n=", k * n, " and m*n=", m * n);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) std::fill(c.begin(), c.end(), 0.0f);
    return;
  }
  const Operands o{a.data(), b.data(), m, n, k, trans_a == Trans::kYes, trans_b == Trans::kYes};
  if (m * n * k < kMinParallelMacs) pool = nullptr;
  const int64_t m_panels = RoundUp(m, kMr) / kMr, n_panels = RoundUp(n, kNr) / kNr;
  const int64_t kc_max = std::min(k, kGemmKBlock);
  float* const pa = ThreadScratch(0, m_panels * kc_max * kMr);  // [m_panels][kc][kMr]
  float* const pb = ThreadScratch(1, n_panels * kc_max * kNr);  // [n_panels][kc][kNr]
  const std::pair<int64_t, int64_t> tile = TaskTile(m, n, pool == nullptr ? 1 : pool->size());
  const int64_t mc = tile.first, nc = tile.second;
  const int64_t row_blocks = RoundUp(m, mc) / mc, col_blocks = RoundUp(n, nc) / nc;
  for (int64_t p0 = 0; p0 < k; p0 += kGemmKBlock) {
    const int64_t kc = std::min(kGemmKBlock, k - p0);
    const bool add = accumulate || p0 > 0;
    ParallelRanges(pool, m_panels + n_panels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        if (t < m_panels)
          PackA(pa + t * kc * kMr, o, t * kMr, p0, kc);
        else
          PackB(pb + (t - m_panels) * kc * kNr, o, (t - m_panels) * kNr, p0, kc);
      }
    });
    // Tasks are column-block major so that consecutive tasks (on one thread) share packed b.
    ParallelRanges(pool, row_blocks * col_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i_begin = (t % row_blocks) * mc, j_begin = (t / row_blocks) * nc;
        const int64_t i_end = std::min(m, i_begin + mc), j_end = std::min(n, j_begin + nc);
        for (int64_t j = j_begin; j < j_end; j += kNr) {
          const float* bp = pb + (j / kNr) * kc * kNr;
          for (int64_t i = i_begin; i < i_end; i += kMr)
            MicroKernel(c.data() + i * n + j, n, std::min(kMr, m - i), std::min(kNr, n - j),
                        pa + (i / kMr) * kc * kMr, bp, kc, add);
        }
      }
    });
  }
}

}  // namespace whale
