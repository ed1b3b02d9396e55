// Attention of one query token's heads over a latent cache that the heads share: the decode step
// of Multi-head Latent Attention in its absorbed form (DeepSeek-V2 §2.1; W_UK is folded into the
// queries before, W_UV applied to u after, both by the caller):
//   S[h, s] = scale · q[h] · C[s]                          h < heads, s < positions
//   u[h]    = Σ_s softmax_s(S[h, ·])[s] · C[s, :latent]
// q [heads, width], C [positions, width] (a cache row: `latent` values, then the rope part that
// only the scores read), u [heads, latent].
#pragma once

#include <cstdint>
#include <span>

namespace whale {

struct LatentAttentionShape {
  int64_t heads = 0;
  int64_t positions = 0;  // cache rows attended, at least 1
  int64_t width = 0;      // values per cache row and per query
  int64_t latent = 0;     // leading values of a row that the mix reads, 1 .. width
  float scale = 1.0f;     // applied to the scores before the softmax
};

// Throws Error naming `context` when a size does not fit the shape.
void ValidateLatentAttention(std::span<const float> u, std::span<const float> q,
                             std::span<const float> cache, const LatentAttentionShape& shape,
                             const char* context);

// One pass over the cache in blocks of positions with a running softmax per head (the block's
// rows stay in cache for both the scores and the mix), on the best SIMD target. The block
// boundaries do not depend on the caller, so a result does not depend on the thread count.
void LatentAttention(std::span<float> u, std::span<const float> q, std::span<const float> cache,
                     const LatentAttentionShape& shape);

// The formula as written: every score in double, an exact softmax, then the weighted sum.
void LatentAttentionRef(std::span<float> u, std::span<const float> q, std::span<const float> cache,
                        const LatentAttentionShape& shape);

}  // namespace whale
