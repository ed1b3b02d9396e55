// MatMul throughput per weight dtype: GB/s of weights read and its % of the measured read
// bandwidth (the decode limit, n = 1), GFLOP/s and its % of the measured product peak (the limit
// of prefill and small batches). Arguments: dtype (0 F32, 1 BF16, 2 F8_E4M3), n, rows, cols,
// threads.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/probe.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

constexpr DType kDTypes[] = {DType::F32, DType::BF16, DType::F8_E4M3};
// Enough distinct copies of the weight that a pass over them cannot be served from the last
// level cache (32 MiB on the project's machines): every n = 1 call streams its weight from DRAM.
constexpr size_t kMinBytesInRotation = size_t{256} << 20;
constexpr int64_t kMaxRotatedTokens = 8;

struct WeightCopy {
  AlignedBuffer data;
  std::vector<float> scales;
  WeightMatrix matrix;
};

// Random N(0, 1) weights; FP8 is quantized as DeepSeek's checkpoints are: one scale per 128 × 128
// block equal to the block's amax / 448.
WeightCopy MakeWeight(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (float& v : values) v = normal(rng);
  WeightCopy copy{AlignedBuffer(values.size() * SizeOf(dtype)), {}, {}};
  if (dtype == DType::F8_E4M3) {
    const int64_t block_rows = (rows + 127) / 128, block_cols = (cols + 127) / 128;
    copy.scales.assign(static_cast<size_t>(block_rows * block_cols), 0.0f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        float& scale = copy.scales[(i / 128) * block_cols + j / 128];
        scale = std::max(scale, std::fabs(values[i * cols + j]) / kF8E4M3Max);
      }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        values[i * cols + j] /= copy.scales[(i / 128) * block_cols + j / 128];
  }
  ConvertFromF32(dtype, values, copy.data.data());
  // As the loader does, FP8 codes are checked for NaN once, so the kernels skip their check.
  copy.matrix = {
      dtype,
      copy.data.data(),
      rows,
      cols,
      copy.scales.empty() ? nullptr : copy.scales.data(),
      dtype == DType::F8_E4M3 && !Fp8HasNanCode({static_cast<const uint8_t*>(copy.data.data()),
                                                 static_cast<size_t>(rows * cols)})};
  return copy;
}

// The best product rate for `dtype` with `threads` threads (kernels/probe.h: MatMul at 128 x
// 2048 x 2048, best of 5), measured once: the compute limit the GFLOP/s are compared against.
double MatMulPeak(int dtype_index, int threads) {
  static double measured[3][3] = {};
  double& peak = measured[dtype_index][threads];
  if (peak == 0.0) {
    ThreadPool pool(threads);
    peak = MeasureMatMulPeak(kDTypes[dtype_index], &pool);
  }
  return peak;
}

// The machine's read bandwidth with `threads` threads (kernels/probe.h), measured once.
double Bandwidth(int threads) {
  static double measured[3] = {};
  if (measured[threads] == 0.0) {
    ThreadPool pool(threads);
    ReadBandwidthOptions options;
    options.bytes = size_t{512} << 20;
    measured[threads] = MeasureReadBandwidth(&pool, options);
  }
  return measured[threads];
}

void BM_MatMul(benchmark::State& state) {
  const DType dtype = kDTypes[state.range(0)];
  const int64_t n = state.range(1), rows = state.range(2), cols = state.range(3);
  const int threads = static_cast<int>(state.range(4));
  ThreadPool pool(threads);
  std::mt19937 rng(1234);
  const size_t weight_bytes = static_cast<size_t>(rows * cols) * SizeOf(dtype);
  // Rotating copies matters up to a few tokens (a decode step, where an expert's weights come
  // from DRAM for its one to three tokens); with more, each weight is reused across tokens anyway.
  // Small weights (under 512 KiB, half of L2) are meant to stay in cache: the kernel's compute
  // speed.
  const size_t n_copies = n <= kMaxRotatedTokens && weight_bytes >= (size_t{512} << 10)
                              ? kMinBytesInRotation / weight_bytes + 1
                              : 1;
  std::vector<WeightCopy> weights;
  for (size_t i = 0; i < n_copies; ++i) weights.push_back(MakeWeight(dtype, rows, cols, rng));
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : x) v = uniform(rng);
  size_t next = 0;
  for (auto _ : state) {
    MatMul(y, x, n, weights[next].matrix, &pool);
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % weights.size();
  }
  state.SetLabel(std::string(Name(dtype)) + " " + ActiveSimdTargetName());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(weight_bytes) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * cols * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  // Fraction of the product-rate peak of this dtype and thread count: the limit once the
  // weights are in cache or shared by many tokens.
  state.counters["peak%"] = benchmark::Counter(
      2.0 * n * rows * cols * 1e-9 / MatMulPeak(static_cast<int>(state.range(0)), threads) * 100,
      benchmark::Counter::kIsIterationInvariantRate);
  // Fraction of the read bandwidth: 1.0 = the weights stream at the machine's limit.
  state.counters["BW%"] =
      benchmark::Counter(static_cast<double>(weight_bytes) * 1e-9 / Bandwidth(threads) * 100,
                         benchmark::Counter::kIsIterationInvariantRate);
}

// The reference on a small shape, for the speed-up of the fast kernel.
void BM_MatMulRef(benchmark::State& state) {
  const DType dtype = kDTypes[state.range(0)];
  const int64_t n = state.range(1), rows = state.range(2), cols = state.range(3);
  std::mt19937 rng(1234);
  const WeightCopy w = MakeWeight(dtype, rows, cols, rng);
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : x) v = uniform(rng);
  for (auto _ : state) {
    MatMulRef(y, x, n, w.matrix);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(Name(dtype)));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * cols * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void MatMulArgs(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t n : {1, 128, 512})
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048}, {7168, 2048}})
        for (int64_t dtype : {0, 1, 2}) b->Args({dtype, n, rows, cols, threads});
  // One token through shorter rows, from DRAM: V3's kv_b_proj (32768 x 512).
  for (int64_t dtype : {0, 1, 2}) b->Args({dtype, 1, 32768, 512, 1});
  // One and a few tokens per expert, from DRAM: a decode step reads its experts one after another,
  // a batched step spreads its tokens over them (8 sequences x top-6 of 64 reach ~35 experts of
  // small-v3, 1-2 tokens each). small-v3's expert gate/up (384 x 1536) and down (1536 x 384),
  // V2-Lite's down (2048 x 1408).
  for (int64_t n : {1, 2, 3, 4, 8})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{384, 1536}, {1536, 384}, {2048, 1408}})
      for (int64_t dtype : {0, 1, 2}) b->Args({dtype, n, rows, cols, 1});
  // Weights resident in L2 (64 x 2048): the kernel's compute speed without DRAM.
  for (int64_t n : {1, 4})
    for (int64_t dtype : {0, 1, 2}) b->Args({dtype, n, 64, 2048, 1});
  // Small batches on a small model's shapes (whale-tiny-r1: hidden 256, experts 256 x 256, dense
  // FFN 768 x 256): the decode steps of a server running several sequences; weights in cache.
  for (int64_t n : {1, 2, 4, 8, 16, 32, 64})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{256, 256}, {768, 256}, {256, 2048}})
      for (int64_t dtype : {0, 1, 2}) b->Args({dtype, n, rows, cols, 1});
  b->ArgNames({"dtype", "n", "rows", "cols", "threads"});
  b->UseRealTime();
}

BENCHMARK(BM_MatMul)->Apply(MatMulArgs);

// One token through BF16 with vdpbf16ps turned off (kernels/simd.h DisableBf16Pairs): on CPUs with
// AVX512_BF16, the F32 decode that BM_MatMul's BF16 n = 1 rows replace, measured in the same run.
void BM_MatMulBf16F32Decode(benchmark::State& state) {
  DisableBf16Pairs(true);
  BM_MatMul(state);
  DisableBf16Pairs(false);
}
BENCHMARK(BM_MatMulBf16F32Decode)
    ->Args({1, 1, 7168, 2048, 1})
    ->Args({1, 1, 384, 1536, 1})
    ->Args({1, 1, 1536, 384, 1})
    ->Args({1, 1, 64, 2048, 1})
    ->ArgNames({"dtype", "n", "rows", "cols", "threads"})
    ->UseRealTime();
BENCHMARK(BM_MatMulRef)
    ->ArgsProduct({{0, 1, 2}, {1, 4}, {256}, {2048}})
    ->ArgNames({"dtype", "n", "rows", "cols"});

}  // namespace
}  // namespace whale

BENCHMARK_MAIN();
