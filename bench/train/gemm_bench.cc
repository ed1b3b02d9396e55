// F32 GEMM throughput for training shapes, against the machine's F32 multiply-add peak.
//   BM_FmaPeak/threads: independent fused multiply-adds on registers only (no memory), the
//     ceiling any F32 matrix product can reach on this machine.
//   BM_Gemm/m/n/k/layout/threads: Gemm in GFLOP/s (2·m·n·k per call). layout: 0 = y = x·Wᵀ
//     (forward), 1 = dx = dy·W, 2 = dW += dyᵀ·x (inner dimension = tokens).
//   BM_MatMulF32: kernels/matmul.h MatMul on the forward shape, for comparison.
#define HWY_COMPILE_ONLY_STATIC 1
#include <benchmark/benchmark.h>
#include <hwy/highway.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

namespace hn = hwy::HWY_NAMESPACE;

std::vector<float> Random(int64_t count) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = uniform(rng);
  return v;
}

// 16 independent accumulator chains hide the FMA latency; 2 FLOPs per lane per FMA.
double FmaLoop(int64_t iterations) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  V acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = hn::Set(d, 0.001f * static_cast<float>(i));
  const V a = hn::Set(d, 0.999f), b = hn::Set(d, 0.0001f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = hn::MulAdd(a, acc[i], b);
  V sum = acc[0];
  for (int i = 1; i < 16; ++i) sum = hn::Add(sum, acc[i]);
  return static_cast<double>(hn::GetLane(sum));
}

void BM_FmaPeak(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  const int64_t iterations = 1 << 20;
  for (auto _ : state) {
    pool.ParallelFor(static_cast<size_t>(pool.size()), 1,
                     [&](size_t, size_t, int) { benchmark::DoNotOptimize(FmaLoop(iterations)); });
  }
  const double flops = 2.0 * 16 * static_cast<double>(hn::Lanes(hn::ScalableTag<float>())) *
                       static_cast<double>(iterations) * pool.size();
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->UseRealTime();

void BM_Gemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int64_t layout = state.range(3);
  ThreadPool pool(static_cast<int>(state.range(4)));
  const Trans ta = layout == 2 ? Trans::kYes : Trans::kNo;
  const Trans tb = layout == 0 ? Trans::kYes : Trans::kNo;
  const std::vector<float> a = Random(m * k), b = Random(k * n);
  std::vector<float> c(static_cast<size_t>(m * n));
  for (auto _ : state) {
    Gemm(c, a, b, m, n, k, ta, tb, layout == 2, &pool);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(m * n * k) * 1e-9 * state.iterations(),
                         benchmark::Counter::kIsRate);
}
// Shapes of a ~10M-parameter model with 2048 tokens per step: dim 256 → 256, 256 → 1024 (FFN),
// 1024 → 256, and the head 256 → 8192; each in the forward, dx and dW layouts.
BENCHMARK(BM_Gemm)
    ->ArgsProduct({{2048}, {256, 1024}, {256}, {0, 1}, {1, 2}})
    ->ArgsProduct({{2048}, {256}, {1024}, {0, 1}, {1, 2}})
    ->ArgsProduct({{2048}, {8192}, {256}, {0}, {1, 2}})
    ->ArgsProduct({{256, 1024}, {256}, {2048}, {2}, {1, 2}})
    ->ArgsProduct({{1024}, {1024}, {1024}, {0}, {1, 2}})
    ->UseRealTime();

void BM_MatMulF32(benchmark::State& state) {
  const int64_t n = state.range(0), rows = state.range(1), cols = state.range(2);
  ThreadPool pool(static_cast<int>(state.range(3)));
  const std::vector<float> x = Random(n * cols), w = Random(rows * cols);
  std::vector<float> y(static_cast<size_t>(n * rows));
  const WeightMatrix weight{DType::F32, w.data(), rows, cols};
  for (auto _ : state) {
    MatMul(y, x, n, weight, &pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(n * rows * cols) * 1e-9 * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatMulF32)->ArgsProduct({{2048}, {256, 1024}, {256}, {1, 2}})->UseRealTime();

}  // namespace
}  // namespace whale
