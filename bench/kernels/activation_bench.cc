// The softmax and SwiGLU kernels (kernels/activation.h) against their double-precision
// references: elements per second over rows the size of attention scores (one decode step's
// positions) and of expert activations. Argument: elements per call.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/activation.h"

namespace whale {
namespace {

std::vector<float> Normal(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

template <void (*Kernel)(std::span<float>)>
void BM_Softmax(benchmark::State& state) {
  const std::vector<float> scores = Normal(state.range(0), 1);
  std::vector<float> x(scores.size());
  for (auto _ : state) {
    x = scores;  // softmax of its own output would converge to a uniform row
    Kernel(x);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

template <void (*Kernel)(std::span<float>, std::span<const float>, std::span<const float>)>
void BM_SiluMul(benchmark::State& state) {
  const std::vector<float> gate = Normal(state.range(0), 2), up = Normal(state.range(0), 3);
  std::vector<float> out(gate.size());
  for (auto _ : state) {
    Kernel(out, gate, up);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_Softmax<Softmax>)->Arg(33)->Arg(512)->Arg(4096);
BENCHMARK(BM_Softmax<SoftmaxRef>)->Arg(33)->Arg(512)->Arg(4096);
BENCHMARK(BM_SiluMul<SiluMul>)->Arg(1408)->Arg(10944);
BENCHMARK(BM_SiluMul<SiluMulRef>)->Arg(1408)->Arg(10944);

}  // namespace
}  // namespace whale
