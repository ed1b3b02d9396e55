#include "kernels/latent_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/simd.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;

struct Case {
  LatentAttentionShape shape;
  std::vector<float> q, cache;
};

Case RandomCase(int64_t heads, int64_t positions, int64_t width, int64_t latent, float scale,
                std::mt19937& rng) {
  Case c{{heads, positions, width, latent, scale}, {}, {}};
  std::normal_distribution<float> normal(0.0f, 1.0f);
  c.q.resize(static_cast<size_t>(heads * width));
  c.cache.resize(static_cast<size_t>(positions * width));  // exactly: ASan sees any overread
  for (float& v : c.q) v = normal(rng);
  for (float& v : c.cache) v = normal(rng);
  return c;
}

// Bound on |u − u_ref| for one head, with ε = 2^-24 and M = max |C|:
// - a score is a `width`-term F32 dot: off by at most width·ε·A, A = scale · max_s Σ_k |q_k C_sk|;
// - a probability then moves by at most 2·width·ε·A relative (numerator and sum), plus the
//   rounding of s − max (≤ 2A·ε relative after e^·), a few ulp for e^· and for each block's
//   rescaling (at most 2 per block), and positions·ε for the running sum;
// - the mix of probabilities summing to 1 adds positions·ε·M.
// Each relative error of the probabilities costs at most M in u.
double Tolerance(const Case& c, int64_t head) {
  const LatentAttentionShape& s = c.shape;
  double a = 0.0, m = 0.0;
  for (int64_t p = 0; p < s.positions; ++p) {
    double row = 0.0;
    for (int64_t k = 0; k < s.width; ++k) {
      row += std::fabs(double{c.q[head * s.width + k]} * c.cache[p * s.width + k]);
      m = std::max(m, std::fabs(double{c.cache[p * s.width + k]}));
    }
    a = std::max(a, std::fabs(double{s.scale}) * row);
  }
  const double blocks = static_cast<double>(s.positions) / 32 + 1;
  return m * kF32Epsilon *
         (2 * s.width * a + 2 * a + 8 + 2 * blocks + 2 * static_cast<double>(s.positions));
}

void ExpectMatchesReference(const Case& c, const std::string& what) {
  const LatentAttentionShape& s = c.shape;
  std::vector<float> u(static_cast<size_t>(s.heads * s.latent), -7.0f);
  std::vector<float> expected(u.size());
  LatentAttention(u, c.q, c.cache, s);
  LatentAttentionRef(expected, c.q, c.cache, s);
  for (int64_t h = 0; h < s.heads; ++h) {
    const double tolerance = Tolerance(c, h);
    for (int64_t k = 0; k < s.latent; ++k)
      ASSERT_NEAR(u[h * s.latent + k], expected[h * s.latent + k], tolerance)
          << what << " heads=" << s.heads << " positions=" << s.positions << " width=" << s.width
          << " latent=" << s.latent << " scale=" << s.scale << " head " << h << " column " << k;
  }
}

// Every Highway target this build compiled and this CPU runs: head counts around the score and
// mix tiles (1 .. 5, 12), positions around the 32-position block and 4-position tile, row widths
// that are and are not whole vectors (DeepSeek-V3's 576 / 512, the small presets' 320 / 256, an
// odd 19 / 7), and two temperatures: peaked weights (scale 1/√width) and nearly uniform ones
// (scale 0.01), where every position's row counts.
TEST(LatentAttention, EveryTargetMatchesTheReference) {
  const std::vector<int64_t> targets = SupportedSimdTargets();
  ASSERT_FALSE(targets.empty());
  struct Width {
    int64_t width, latent;
  };
  for (int64_t target : targets) {
    ForceSimdTarget(target);
    const std::string name = SimdTargetName(target);
    std::mt19937 rng(7);
    for (Width w : {Width{320, 256}, Width{19, 7}, Width{576, 512}})
      for (int64_t heads : {1, 3, 5, 12})
        for (int64_t positions : {1, 31, 32, 33, 129})
          for (float scale : {1.0f / std::sqrt(static_cast<float>(w.width)), 0.01f})
            ExpectMatchesReference(RandomCase(heads, positions, w.width, w.latent, scale, rng),
                                   name);
    ExpectMatchesReference(RandomCase(2, 4095, 320, 256, 0.05f, rng), name);
  }
  ForceSimdTarget(0);
}

// Scores far beyond e^x's F32 range (up to ±1900) stay finite: integer queries and rows make
// every score exact, so the only error left is the softmax's own. The maximum moves up block by
// block (the rows grow with the position), so every block rescales what came before it.
TEST(LatentAttention, LargeScoresUseARunningMaximum) {
  const LatentAttentionShape shape{3, 200, 320, 256, 1.0f};
  Case c{shape, std::vector<float>(3 * 320), std::vector<float>(200 * 320)};
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> small(-2, 2);
  for (float& v : c.q) v = 2.0f;
  for (int64_t s = 0; s < shape.positions; ++s)
    for (int64_t k = 0; k < shape.width; ++k)
      c.cache[s * shape.width + k] = static_cast<float>(small(rng) + (s * 3 / shape.positions));
  std::vector<float> u(3 * 256), expected(3 * 256);
  LatentAttention(u, c.q, c.cache, shape);
  LatentAttentionRef(expected, c.q, c.cache, shape);
  for (size_t i = 0; i < u.size(); ++i) {
    ASSERT_TRUE(std::isfinite(u[i])) << i;
    // Exact scores: only e^·, the rescalings and the sums round (see Tolerance).
    EXPECT_NEAR(u[i], expected[i], 4 * (8 + 2 * 8 + 2 * 200) * kF32Epsilon) << i;
  }
}

TEST(LatentAttention, RejectsShapesThatDoNotFit) {
  std::vector<float> u(2 * 4), q(2 * 6), cache(3 * 6);
  EXPECT_NO_THROW(LatentAttention(u, q, cache, {2, 3, 6, 4, 1.0f}));
  EXPECT_THROW(LatentAttention(u, q, cache, {2, 3, 6, 7, 1.0f}), Error);     // latent > width
  EXPECT_THROW(LatentAttention(u, q, cache, {2, 0, 6, 4, 1.0f}), Error);     // no position
  EXPECT_THROW(LatentAttention(u, q, cache, {2, 4, 6, 4, 1.0f}), Error);     // cache too short
  EXPECT_THROW(LatentAttention(u, q, cache, {3, 3, 6, 4, 1.0f}), Error);     // q, u too short
  EXPECT_THROW(LatentAttention(u, q, cache, {2, 3, 6, 4, NAN}), Error);      // scale
  EXPECT_THROW(LatentAttentionRef(u, q, cache, {2, 3, 5, 4, 1.0f}), Error);  // q not heads*width
}

}  // namespace
}  // namespace whale
