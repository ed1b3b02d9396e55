#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kernels/latent_attention.h"
#include "util/error.h"

namespace whale {

void ValidateLatentAttention(std::span<const float> u, std::span<const float> q,
                             std::span<const float> cache, const LatentAttentionShape& shape,
                             const char* context) {
  const LatentAttentionShape& s = shape;
  if (s.heads < 1 || s.positions < 1 || s.width < 1 || s.latent < 1 || s.latent > s.width)
    Fail(context, ": heads=", s.heads, " positions=", s.positions, " width=", s.width,
         " latent=", s.latent, "; expected heads, positions >= 1 and 1 <= latent <= width");
  if (!std::isfinite(s.scale)) Fail(context, ": scale ", s.scale, " is not finite");
  if (static_cast<int64_t>(q.size()) != s.heads * s.width ||
      static_cast<int64_t>(u.size()) != s.heads * s.latent ||
      static_cast<int64_t>(cache.size()) < s.positions * s.width)
    Fail(context, ": spans of ", u.size(), " (u), ", q.size(), " (q) and ", cache.size(),
         " (cache) floats; expected heads*latent=", s.heads * s.latent,
         ", heads*width=", s.heads * s.width,
         " and at least positions*width=", s.positions * s.width);
}

void LatentAttentionRef(std::span<float> u, std::span<const float> q, std::span<const float> cache,
                        const LatentAttentionShape& shape) {
  ValidateLatentAttention(u, q, cache, shape, "LatentAttentionRef");
  const int64_t positions = shape.positions, width = shape.width, latent = shape.latent;
  std::vector<double> p(static_cast<size_t>(positions));
  for (int64_t h = 0; h < shape.heads; ++h) {
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t s = 0; s < positions; ++s) {
      double dot = 0.0;
      for (int64_t k = 0; k < width; ++k) dot += double{q[h * width + k]} * cache[s * width + k];
      p[s] = shape.scale * dot;
      max = std::max(max, p[s]);
    }
    double sum = 0.0;
    for (double& v : p) sum += v = std::exp(v - max);
    for (int64_t k = 0; k < latent; ++k) {
      double mixed = 0.0;
      for (int64_t s = 0; s < positions; ++s) mixed += p[s] * cache[s * width + k];
      u[h * latent + k] = static_cast<float>(mixed / sum);
    }
  }
}

}  // namespace whale
