// The latent attention kernel (kernels/latent_attention.h) for every Highway target, chosen at
// run time.
//
// The obvious order (every score through MatMul, a softmax, then the weighted sum) read a layer's
// cache four times per token (the scores in three tiles of 4 heads, then the mix), from memory
// once the context outgrows the caches, and ran at ~27 GFLOP/s on one Zen 4 core. Here the cache
// is read once, in blocks of kBlock positions that stay in L1/L2 for every head's scores and mix,
// and the softmax runs over the blocks with a running maximum and sum per head (the online
// softmax of Milakov & Gimelshein, 2018, as FlashAttention uses it): when a block raises a head's
// maximum, that head's earlier sum and mix are scaled by e^(old max − new max).
//   Scores: tiles of kHeadTile heads x 4 positions, dot products along the row, the four
//           positions' sums reduced together (SumRows4).
//   Mix:    tiles of kHeadTile heads x kMixVectors vectors of latent columns held in registers
//           while the block's positions stream past.
#include "kernels/latent_attention.h"

#include "kernels/simd_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/latent_attention.cc"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
// After highway.h, once per target (clang-format off keeps it there).
// clang-format off
#include <hwy/contrib/math/math-inl.h>
// clang-format on

#ifndef WHALE_KERNELS_LATENT_ATTENTION_ONCE
#define WHALE_KERNELS_LATENT_ATTENTION_ONCE
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace whale {
namespace latent_attention_detail {

// Positions per block: 32 rows of DeepSeek-V3's 576-value cache rows are 72 KiB (L2), of the
// small presets' 320 values 40 KiB.
constexpr int64_t kBlock = 32;
constexpr int kPositionTile = 4;  // positions per score tile: one SumRows4
constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

}  // namespace latent_attention_detail
}  // namespace whale
#endif  // WHALE_KERNELS_LATENT_ATTENTION_ONCE

HWY_BEFORE_NAMESPACE();
namespace whale {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using namespace latent_attention_detail;  // NOLINT: constants shared by all targets

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#include "kernels/sum_rows-inl.h"  // SumRows4

#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM_A64
constexpr int kHeadTile = 4;  // 32 vector registers: 16 accumulators + 4 rows + a query or weight
#else
constexpr int kHeadTile = 2;  // 16 vector registers: 8 accumulators + 4 rows + a query or weight
#endif
constexpr int kMixVectors = 4;

// Walks the next block's rows one 64-byte line per Step, called from the inner loops of the
// scores and the mix: from memory, a block read on demand by its first heads' scores left them
// waiting (one core, 12 heads x 576 positions x 320 values: 32-36 GFLOP/s, 53 with the rows in
// cache); spread over the current block's work, the fetch overlaps it (48-57 GFLOP/s). One
// prefetch per block (one block ahead, from the first heads' score tiles) asked for its lines
// in bursts and gained nothing.
struct LineFetcher {
  const char* next = nullptr;
  const char* end = nullptr;
  HWY_INLINE void Step() {
    if (next < end) {
      hwy::Prefetch(next);
      next += 64;
    }
  }
};

// scores[i * stride + j] = q[i] · c[j] for H heads (rows of q) and 4 positions (rows of c).
template <int H>
HWY_INLINE void ScoreTile(const float* q, const float* c, int64_t width, float* scores,
                          int64_t stride, LineFetcher& fetch) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  VF acc[H][kPositionTile];
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < kPositionTile; ++j) acc[i][j] = hn::Zero(df);
  int64_t k = 0;
  for (; k + n <= width; k += n) {
    fetch.Step();
    const VF c0 = hn::LoadU(df, c + k), c1 = hn::LoadU(df, c + width + k);
    const VF c2 = hn::LoadU(df, c + 2 * width + k), c3 = hn::LoadU(df, c + 3 * width + k);
    for (int i = 0; i < H; ++i) {
      const VF qi = hn::LoadU(df, q + i * width + k);
      acc[i][0] = hn::MulAdd(qi, c0, acc[i][0]);
      acc[i][1] = hn::MulAdd(qi, c1, acc[i][1]);
      acc[i][2] = hn::MulAdd(qi, c2, acc[i][2]);
      acc[i][3] = hn::MulAdd(qi, c3, acc[i][3]);
    }
  }
  for (int i = 0; i < H; ++i) {
    float sums[kPositionTile];
    SumRows4(df, acc[i], sums);
    for (int j = 0; j < kPositionTile; ++j) {
      float tail = 0.0f;  // a row shorter than a vector, or its last columns
      for (int64_t t = k; t < width; ++t) tail += q[i * width + t] * c[j * width + t];
      scores[i * stride + j] = sums[j] + tail;
    }
  }
}

// u[i][k0 + v·N + l] += Σ_{j < nb} p[i * stride + j] · c[j][k0 + v·N + l] for H heads, V vectors.
template <int H, int V>
HWY_INLINE void MixTile(float* u, int64_t latent, const float* p, int64_t stride, const float* c,
                        int64_t width, int64_t nb, int64_t k0, LineFetcher& fetch) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  VF acc[H][V];
  for (int i = 0; i < H; ++i)
    for (int v = 0; v < V; ++v) acc[i][v] = hn::LoadU(df, u + i * latent + k0 + v * n);
  for (int64_t j = 0; j < nb; ++j) {
    fetch.Step();
    fetch.Step();
    VF row[V];
    for (int v = 0; v < V; ++v) row[v] = hn::LoadU(df, c + j * width + k0 + v * n);
    for (int i = 0; i < H; ++i) {
      const VF weight = hn::Set(df, p[i * stride + j]);
      for (int v = 0; v < V; ++v) acc[i][v] = hn::MulAdd(weight, row[v], acc[i][v]);
    }
  }
  for (int i = 0; i < H; ++i)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[i][v], df, u + i * latent + k0 + v * n);
}

template <int H>
void MixHeads(float* u, int64_t latent, const float* p, int64_t stride, const float* c,
              int64_t width, int64_t nb, LineFetcher& fetch) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t k = 0;
  for (; k + kMixVectors * n <= latent; k += kMixVectors * n)
    MixTile<H, kMixVectors>(u, latent, p, stride, c, width, nb, k, fetch);
  for (; k + n <= latent; k += n) MixTile<H, 1>(u, latent, p, stride, c, width, nb, k, fetch);
  for (; k < latent; ++k)
    for (int i = 0; i < H; ++i) {
      float sum = u[i * latent + k];
      for (int64_t j = 0; j < nb; ++j) sum += p[i * stride + j] * c[j * width + k];
      u[i * latent + k] = sum;
    }
}

// p[0, nb) = e^(p − max) with max the larger of `running_max` and the block's (updated), and
// running_sum the sum of all of them; returns e^(old max − new max), by which the head's earlier
// sum (already applied) and mix (by the caller) are to be scaled: 0 before the first block.
HWY_INLINE float SoftmaxBlock(float* p, int64_t nb, float scale, float& running_max,
                              float& running_sum) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const VF scale_v = hn::Set(df, scale), minus_infinity = hn::Set(df, kMinusInfinity);
  VF max_v = minus_infinity;
  for (int64_t j = 0; j < nb; j += n) {
    VF v = hn::Mul(hn::LoadU(df, p + j), scale_v);  // p has room for whole vectors past nb
    if (j + n > nb)
      v = hn::IfThenElse(hn::FirstN(df, static_cast<size_t>(nb - j)), v, minus_infinity);
    max_v = hn::Max(max_v, v);
    hn::StoreU(v, df, p + j);
  }
  const float new_max = std::max(running_max, hn::GetLane(hn::MaxOfLanes(df, max_v)));
  const float correction = running_max == kMinusInfinity ? 0.0f : std::exp(running_max - new_max);
  const VF shift = hn::Set(df, new_max);
  VF sum = hn::Zero(df);
  for (int64_t j = 0; j < nb; j += n) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, p + j), shift));  // e^−inf = 0 past nb
    sum = hn::Add(sum, e);
    hn::StoreU(e, df, p + j);
  }
  running_sum = running_sum * correction + hn::GetLane(hn::SumOfLanes(df, sum));
  running_max = new_max;
  return correction;
}

}  // namespace

void LatentAttentionImpl(float* u, const float* q, const float* cache, int64_t heads,
                         int64_t positions, int64_t width, int64_t latent, float scale) {
  const int64_t n = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t stride = (kBlock + n - 1) / n * n;  // probs row: whole vectors
  thread_local std::vector<float> padded, probs, running_max, running_sum;
  probs.resize(static_cast<size_t>(heads * stride));  // [heads, stride]: scores, then e^(s − max)
  running_max.assign(static_cast<size_t>(heads), kMinusInfinity);  // [heads]
  running_sum.assign(static_cast<size_t>(heads), 0.0f);            // [heads]
  std::fill(u, u + heads * latent, 0.0f);
  for (int64_t s0 = 0; s0 < positions; s0 += kBlock) {
    const int64_t nb = std::min(kBlock, positions - s0);
    const int64_t tiles = (nb + kPositionTile - 1) / kPositionTile;
    const float* c = cache + s0 * width;  // [nb, width]
    if (nb % kPositionTile != 0) {
      // The last score tile reads 4 rows: the block's rows then zero rows, never past the cache.
      padded.assign(static_cast<size_t>(tiles * kPositionTile * width), 0.0f);
      std::copy(c, c + nb * width, padded.begin());
      c = padded.data();
    }
    const int64_t next_rows = std::min(kBlock, std::max<int64_t>(0, positions - s0 - kBlock));
    const auto* next_block = reinterpret_cast<const char*>(cache + (s0 + nb) * width);
    LineFetcher fetch{next_block, next_block + next_rows * width * sizeof(float)};
    int64_t h = 0;
    for (; h + kHeadTile <= heads; h += kHeadTile)
      for (int64_t t = 0; t < tiles; ++t)
        ScoreTile<kHeadTile>(q + h * width, c + t * kPositionTile * width, width,
                             probs.data() + h * stride + t * kPositionTile, stride, fetch);
    for (; h < heads; ++h)
      for (int64_t t = 0; t < tiles; ++t)
        ScoreTile<1>(q + h * width, c + t * kPositionTile * width, width,
                     probs.data() + h * stride + t * kPositionTile, stride, fetch);
    for (h = 0; h < heads; ++h) {
      const float correction =
          SoftmaxBlock(probs.data() + h * stride, nb, scale, running_max[h], running_sum[h]);
      if (correction != 1.0f)
        for (int64_t k = 0; k < latent; ++k) u[h * latent + k] *= correction;
    }
    for (h = 0; h + kHeadTile <= heads; h += kHeadTile)
      MixHeads<kHeadTile>(u + h * latent, latent, probs.data() + h * stride, stride, c, width, nb,
                          fetch);
    for (; h < heads; ++h)
      MixHeads<1>(u + h * latent, latent, probs.data() + h * stride, stride, c, width, nb, fetch);
  }
  for (int64_t h = 0; h < heads; ++h) {
    const float inverse = 1.0f / running_sum[h];
    for (int64_t k = 0; k < latent; ++k) u[h * latent + k] *= inverse;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace whale
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(LatentAttentionImpl);

void LatentAttention(std::span<float> u, std::span<const float> q, std::span<const float> cache,
                     const LatentAttentionShape& shape) {
  ValidateLatentAttention(u, q, cache, shape, "LatentAttention");
  HWY_DYNAMIC_DISPATCH(LatentAttentionImpl)
  (u.data(), q.data(), cache.data(), shape.heads, shape.positions, shape.width, shape.latent,
   shape.scale);
}

}  // namespace whale
#endif  // HWY_ONCE
