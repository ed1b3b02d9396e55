// Training ops throughput: attention (forward + backward), cross-entropy, FP8 quantization.
//   BM_Attention/seq_len/heads/threads: GFLOP/s counting the useful causal work only,
//     forward 2·(qk + v)·L²/2·H and backward twice that (as training FLOP counts do).
//   BM_CrossEntropy/rows/vocab/threads: rows per second (fused softmax + gradient).
//   BM_Fp8Quantize/rows/cols/tile: elements per second for the recipe's three tile shapes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "train/fp8_recipe.h"
#include "train/ops_attention.h"
#include "train/ops_loss.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

std::vector<float> RandomValues(int64_t count, float range) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-range, range);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = uniform(rng);
  return v;
}

void BM_Attention(benchmark::State& state) {
  const int64_t len = state.range(0), heads = state.range(1), qk = 96, dv = 64, n_seqs = 2;
  ThreadPool pool(static_cast<int>(state.range(2)));
  const AttentionShape s{n_seqs, len, heads, qk, dv, 0.1};
  const int64_t rows = n_seqs * len;
  const std::vector<float> q = RandomValues(rows * heads * qk, 1),
                           k = RandomValues(rows * heads * qk, 1),
                           v = RandomValues(rows * heads * dv, 1),
                           d = RandomValues(rows * heads * dv, 1);
  const std::vector<int32_t> segments(rows, 0);
  std::vector<float> out(rows * heads * dv), lse(rows * heads), dq(q.size()), dk(k.size()),
      dvv(v.size());
  for (auto _ : state) {
    AttentionForward<float>(out, lse, q, k, v, segments, s, &pool);
    AttentionBackward<float>(dq, dk, dvv, d, q, k, v, out, lse, segments, s, &pool);
    benchmark::DoNotOptimize(dq.data());
  }
  const double flops = 3.0 * 2.0 * (qk + dv) * len * len / 2.0 * heads * n_seqs;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)->ArgsProduct({{256, 512}, {4}, {1, 2}})->UseRealTime();

void BM_CrossEntropy(benchmark::State& state) {
  const int64_t n = state.range(0), vocab = state.range(1);
  ThreadPool pool(static_cast<int>(state.range(2)));
  const std::vector<float> logits = RandomValues(n * vocab, 4);
  std::vector<float> d(logits.size());
  std::vector<int32_t> targets(n);
  for (int64_t i = 0; i < n; ++i) targets[i] = static_cast<int32_t>(i * 7919 % vocab);
  for (auto _ : state) {
    benchmark::DoNotOptimize(CrossEntropy<float>(d, logits, targets, n, vocab, 1.0, &pool).loss);
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CrossEntropy)->ArgsProduct({{2048}, {8192}, {1, 2}})->UseRealTime();

void BM_Fp8Quantize(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), tile = state.range(2);
  const int64_t tr = tile == 0 ? 1 : 128, tc = tile == 1 ? 1 : 128;
  const std::vector<float> x = RandomValues(rows * cols, 3);
  std::vector<float> out(x.size());
  for (auto _ : state) {
    Fp8QuantizeDequantize(out, x, rows, cols, tr, tc, nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["elements/s"] = benchmark::Counter(
      static_cast<double>(rows * cols) * state.iterations(), benchmark::Counter::kIsRate);
}
// tile: 0 = 1×128, 1 = 128×1, 2 = 128×128.
BENCHMARK(BM_Fp8Quantize)->ArgsProduct({{2048}, {256}, {0, 1, 2}})->UseRealTime();

}  // namespace
}  // namespace whale
