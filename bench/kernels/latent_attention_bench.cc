// The decode step's attention over MLA's latent cache (kernels/latent_attention.h): the fused
// kernel, the unfused order it replaced in the model (scores through MatMul, a softmax, then the
// weighted sum), and the double-precision reference. Arguments: heads, positions, row width,
// latent width. The caches rotate through 128 MiB of copies, so each call reads its cache from
// memory as a decode step does (the weights stream through the caches between two layers).
// Counters: GFLOP/s (2 per multiply-add of the scores and the mix) and peak%, against MatMul's
// F32 product rate on one thread (kernels/probe.h) measured in the same run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "kernels/activation.h"
#include "kernels/latent_attention.h"
#include "kernels/matmul.h"
#include "kernels/probe.h"
#include "util/aligned_buffer.h"

namespace whale {
namespace {

constexpr size_t kCacheBytesInRotation = size_t{128} << 20;

double F32Peak() {
  static const double peak = MeasureMatMulPeak(DType::F32, nullptr);
  return peak;
}

// What the model did before the fused kernel: all scores, softmax, then the mix 64 latent
// columns at a time (the heads' partial sums in L1 while the rows stream).
void UnfusedLatentAttention(std::span<float> u, std::span<const float> q,
                            std::span<const float> cache, const LatentAttentionShape& s,
                            std::vector<float>& probs) {
  probs.resize(static_cast<size_t>(s.heads * s.positions));
  const WeightMatrix keys{DType::F32, cache.data(), s.positions, s.width};
  MatMul(probs, q, s.heads, keys, nullptr);
  for (int64_t h = 0; h < s.heads; ++h) {
    float* p = probs.data() + h * s.positions;
    for (int64_t i = 0; i < s.positions; ++i) p[i] *= s.scale;
    Softmax(std::span<float>(p, s.positions));
  }
  std::fill(u.begin(), u.end(), 0.0f);
  for (int64_t j0 = 0; j0 < s.latent; j0 += 64) {
    const int64_t jn = std::min<int64_t>(64, s.latent - j0);
    for (int64_t i = 0; i < s.positions; ++i)
      for (int64_t h = 0; h < s.heads; ++h) {
        const float weight = probs[h * s.positions + i];
        float* uh = u.data() + h * s.latent + j0;
        const float* row = cache.data() + i * s.width + j0;
        for (int64_t j = 0; j < jn; ++j) uh[j] += weight * row[j];
      }
  }
}

enum class Impl { kFused, kUnfused, kReference };

template <Impl kImpl>
void BM_LatentAttention(benchmark::State& state) {
  const LatentAttentionShape shape{state.range(0), state.range(1), state.range(2), state.range(3),
                                   0.05f};
  const size_t cache_floats = static_cast<size_t>(shape.positions * shape.width);
  const size_t copies =
      kImpl == Impl::kReference ? 1 : kCacheBytesInRotation / (cache_floats * sizeof(float)) + 1;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  AlignedBuffer buffer(copies * cache_floats * sizeof(float));  // huge pages, as a KV cache
  const std::span<float> caches = buffer.as<float>();
  for (float& v : caches) v = normal(rng);
  std::vector<float> q(static_cast<size_t>(shape.heads * shape.width));
  for (float& v : q) v = normal(rng);
  std::vector<float> u(static_cast<size_t>(shape.heads * shape.latent)), probs;
  size_t next = 0;
  for (auto _ : state) {
    const std::span<const float> cache(caches.data() + next * cache_floats, cache_floats);
    if constexpr (kImpl == Impl::kFused) LatentAttention(u, q, cache, shape);
    if constexpr (kImpl == Impl::kUnfused) UnfusedLatentAttention(u, q, cache, shape, probs);
    if constexpr (kImpl == Impl::kReference) LatentAttentionRef(u, q, cache, shape);
    benchmark::DoNotOptimize(u.data());
    next = (next + 1) % copies;
  }
  const double flops =
      2.0 * static_cast<double>(shape.heads * shape.positions * (shape.width + shape.latent));
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak%"] = benchmark::Counter(flops * 1e-9 / F32Peak() * 100,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// small-v3's 12 heads over 320-value rows (256 latent) at the bench's default context (512 + 64)
// and at 2K; DeepSeek-V3's rows (576 / 512) with 64 heads (128 split over two threads).
void LatentArgs(benchmark::internal::Benchmark* b) {
  b->Args({12, 576, 320, 256})->Args({12, 2080, 320, 256})->Args({64, 1024, 576, 512});
  b->ArgNames({"heads", "positions", "width", "latent"});
}

BENCHMARK(BM_LatentAttention<Impl::kFused>)->Apply(LatentArgs);
BENCHMARK(BM_LatentAttention<Impl::kUnfused>)->Apply(LatentArgs);
BENCHMARK(BM_LatentAttention<Impl::kReference>)->Args({12, 576, 320, 256});

}  // namespace
}  // namespace whale
