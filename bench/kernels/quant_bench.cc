// Int8 / int4 matrix products (kernels/quant_matmul.h): GB/s of weight bytes read (codes and
// scales) and its percentage of this machine's read bandwidth at n = 1 (decode), GFLOP/s at
// n = 128 (prefill), and the scalar reference for scale. Arguments: format (0 int8, 1 int4), n,
// rows, cols, threads.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "kernels/activation.h"
#include "kernels/matmul.h"
#include "kernels/probe.h"
#include "kernels/quant.h"
#include "kernels/quant_matmul.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

// As matmul_bench.cc: enough copies that an n = 1 pass streams its weight from DRAM.
constexpr size_t kQuantBytesInRotation = size_t{256} << 20;

struct QuantCopy {
  AlignedBuffer codes;
  WeightMatrix matrix;
};

QuantCopy MakeQuantWeight(QuantFormat format, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (float& v : values) v = normal(rng);
  const size_t bytes = static_cast<size_t>(QuantStoredBytes(format, rows, cols));
  QuantCopy copy{AlignedBuffer(bytes), {}};
  QuantizeRows(format, std::span<uint8_t>(static_cast<uint8_t*>(copy.codes.data()), bytes), values,
               rows, cols);
  copy.matrix = {format == QuantFormat::kInt8 ? DType::I8 : DType::U8, copy.codes.data(), rows,
                 cols};
  return copy;
}

double ReadBandwidth(ThreadPool& pool) {
  static std::map<int, double> measured;  // GB/s by thread count
  auto it = measured.find(pool.size());
  if (it == measured.end()) it = measured.emplace(pool.size(), MeasureReadBandwidth(&pool)).first;
  return it->second;
}

void BM_QuantMatMul(benchmark::State& state) {
  const QuantFormat format = state.range(0) == 0 ? QuantFormat::kInt8 : QuantFormat::kInt4;
  const int64_t n = state.range(1), rows = state.range(2), cols = state.range(3);
  ThreadPool pool(static_cast<int>(state.range(4)));
  std::mt19937 rng(1234);
  const size_t weight_bytes = static_cast<size_t>(QuantStoredBytes(format, rows, cols));
  const size_t n_copies = n == 1 ? kQuantBytesInRotation / weight_bytes + 1 : 1;
  std::vector<QuantCopy> weights;
  for (size_t i = 0; i < n_copies; ++i) weights.push_back(MakeQuantWeight(format, rows, cols, rng));
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : x) v = uniform(rng);
  const auto fast = format == QuantFormat::kInt8 ? MatMulInt8 : MatMulInt4;
  size_t next = 0;
  for (auto _ : state) {
    fast(y, x, n, weights[next].matrix, &pool);
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % weights.size();
  }
  state.SetLabel(std::string(QuantFormatName(format)) + " " + QuantMatMulTarget());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(weight_bytes) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * cols * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  if (n == 1) {
    state.counters["read_GB/s"] = ReadBandwidth(pool);
    // % of read bandwidth: weight GB/s / read GB/s * 100, as a rate counter.
    state.counters["%read_bw"] =
        benchmark::Counter(static_cast<double>(weight_bytes) * 1e-9 * 100 / ReadBandwidth(pool),
                           benchmark::Counter::kIsIterationInvariantRate);
  }
}

void BM_QuantMatMulRef(benchmark::State& state) {
  const QuantFormat format = state.range(0) == 0 ? QuantFormat::kInt8 : QuantFormat::kInt4;
  const int64_t n = state.range(1), rows = state.range(2), cols = state.range(3);
  std::mt19937 rng(1234);
  const QuantCopy w = MakeQuantWeight(format, rows, cols, rng);
  std::vector<float> x(static_cast<size_t>(n * cols), 0.5f), y(static_cast<size_t>(n * rows));
  for (auto _ : state) {
    MatMulQuantRef(y, x, n, w.matrix);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(QuantFormatName(format));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * cols * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// Absorbed attention's query product for one head, q_lat[n, cols] = q_nope[n, rows] · W_UK
// (V2-Lite and V3: 128 x 512): MatMulUntransposed on the head's rows in their stored type (int8,
// int4, BF16, FP8), or, as before it, MatMul over a transposed F32 copy of W_UK ([cols, rows]).
// The weights rotate through 256 MiB of copies, so every call reads from DRAM as a decode step
// does. Reports GB/s of weight bytes, its % of one core's read bandwidth measured in the same run
// (%read_bw), and weights per second. Arguments: form (0 int8, 1 int4, 2 BF16, 3 FP8, 4 the F32
// copy), n, rows, cols; one thread (each head is one task).
void BM_AbsorbQueries(benchmark::State& state) {
  const int64_t form = state.range(0), n = state.range(1), rows = state.range(2),
                cols = state.range(3);
  constexpr DType kForms[] = {DType::I8, DType::U8, DType::BF16, DType::F8_E4M3, DType::F32};
  const DType dtype = kForms[form];
  const bool copy = form == 4;
  std::mt19937 rng(99);
  const QuantFormat format = dtype == DType::U8 ? QuantFormat::kInt4 : QuantFormat::kInt8;
  const bool quantized = dtype == DType::I8 || dtype == DType::U8;
  const size_t bytes = quantized ? static_cast<size_t>(QuantStoredBytes(format, rows, cols))
                                 : static_cast<size_t>(rows * cols) * SizeOf(dtype);
  const size_t n_copies = kQuantBytesInRotation / bytes + 1;
  AlignedBuffer all_copies(n_copies * bytes);
  auto* base = static_cast<uint8_t*>(all_copies.data());
  if (quantized) {
    const QuantCopy first = MakeQuantWeight(format, rows, cols, rng);
    for (size_t i = 0; i < n_copies; ++i) std::memcpy(base + i * bytes, first.codes.data(), bytes);
  } else {
    // Random bytes: N(0, 1)-like values do not change the speed of a decode that has no branch.
    std::uniform_int_distribution<int> byte(0, 255);
    for (size_t i = 0; i < bytes; ++i) base[i] = static_cast<uint8_t>(byte(rng));
    if (dtype == DType::F8_E4M3)
      for (size_t i = 0; i < bytes; ++i) base[i] &= 0x77;  // finite codes of moderate size
    if (dtype == DType::F32 || dtype == DType::BF16) {
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> values(static_cast<size_t>(rows * cols));
      for (float& v : values) v = normal(rng);
      ConvertFromF32(dtype, values, base);
    }
    for (size_t i = 1; i < n_copies; ++i) std::memcpy(base + i * bytes, base, bytes);
  }
  const std::vector<float> scales(static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128)),
                                  0.01f);
  std::vector<float> x(static_cast<size_t>(n * rows)), y(static_cast<size_t>(n * cols));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : x) v = uniform(rng);
  size_t next = 0;
  for (auto _ : state) {
    const void* data = base + next * bytes;
    if (copy) {
      MatMul(y, x, n, WeightMatrix{DType::F32, data, cols, rows}, nullptr);
    } else {
      const WeightMatrix w{
          dtype, data, rows, cols, dtype == DType::F8_E4M3 ? scales.data() : nullptr, true};
      MatMulUntransposed(y, x, n, w, 0, rows);
    }
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % n_copies;
  }
  state.SetLabel(copy ? "F32 copy" : std::string(Name(dtype)) + " in place");
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["Gweights/s"] = benchmark::Counter(static_cast<double>(rows * cols) * 1e-9,
                                                    benchmark::Counter::kIsIterationInvariantRate);
  // The limit of a decode step's product is one core's read bandwidth, measured here.
  ThreadPool one_thread(1);
  state.counters["read_GB/s"] = ReadBandwidth(one_thread);
  state.counters["%read_bw"] =
      benchmark::Counter(static_cast<double>(bytes) * 1e-9 * 100 / ReadBandwidth(one_thread),
                         benchmark::Counter::kIsIterationInvariantRate);
}

// A decode step's routed experts as the model runs them (model/ffn.cc): eight V2-Lite-shaped
// SwiGLU experts (gate and up [1408, 2048], down [2048, 1408]) drawn at random from a set larger
// than the last-level cache, one task per expert on the pool's threads, one token. Each iteration
// also reads the same experts' bytes with the bandwidth probe's loop (ReadFourStreams, no
// arithmetic), in alternating order, so %reads is the kernel's share of what plain reads get from
// the same addresses at the same moment: the VM's minute-to-minute swings cancel, and what is left
// is the kernel's own cost. %read_bw compares with the probe (kernels/probe.h) as the model's
// roofline does. Arguments: format (0 int8, 1 int4, 2 FP8 e4m3 with 128 x 128 block scales),
// threads.
void BM_ExpertStep(benchmark::State& state) {
  const bool fp8 = state.range(0) == 2;
  const QuantFormat format = state.range(0) == 0 ? QuantFormat::kInt8 : QuantFormat::kInt4;
  ThreadPool pool(static_cast<int>(state.range(1)));
  constexpr int64_t kHidden = 2048, kInter = 1408, kActive = 8;
  // Each matrix from a 4 KiB boundary and padded to a multiple of 256 bytes (ReadFourStreams).
  const auto padded = [](int64_t bytes) { return (bytes + 4095) / 4096 * 4096; };
  const int64_t in_bytes = fp8 ? kInter * kHidden : QuantStoredBytes(format, kInter, kHidden);
  const int64_t out_bytes = fp8 ? kHidden * kInter : QuantStoredBytes(format, kHidden, kInter);
  const int64_t matrix_offset[3] = {0, padded(in_bytes), 2 * padded(in_bytes)};
  const int64_t expert_stride = 2 * padded(in_bytes) + padded(out_bytes);
  const int64_t n_experts =
      std::max<int64_t>(4 * kActive, static_cast<int64_t>(kQuantBytesInRotation) / expert_stride);
  AlignedBuffer all(static_cast<size_t>(n_experts * expert_stride));
  auto* base = static_cast<uint8_t*>(all.data());
  std::mt19937 rng(7);
  if (fp8) {
    // Random finite codes of moderate size (as BM_AbsorbQueries): the decode has no branch.
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t i = 0; i < n_experts * expert_stride; ++i)
      base[i] = static_cast<uint8_t>(byte(rng) & 0x77);
  } else {
    const QuantCopy in = MakeQuantWeight(format, kInter, kHidden, rng);
    const QuantCopy out = MakeQuantWeight(format, kHidden, kInter, rng);
    for (int64_t e = 0; e < n_experts; ++e) {
      uint8_t* expert = base + e * expert_stride;
      std::memcpy(expert + matrix_offset[0], in.codes.data(), static_cast<size_t>(in_bytes));
      std::memcpy(expert + matrix_offset[1], in.codes.data(), static_cast<size_t>(in_bytes));
      std::memcpy(expert + matrix_offset[2], out.codes.data(), static_cast<size_t>(out_bytes));
    }
  }
  const DType dtype = fp8 ? DType::F8_E4M3 : format == QuantFormat::kInt8 ? DType::I8 : DType::U8;
  // F8_E4M3: every matrix's [ceil(rows / 128), ceil(cols / 128)] block scales (at most 16 x 16).
  const std::vector<float> scales(fp8 ? 256 : 0, 0.01f);
  const auto matrix = [&](const uint8_t* data, int64_t rows, int64_t cols) {
    return WeightMatrix{dtype, data, rows, cols, fp8 ? scales.data() : nullptr, fp8};
  };
  std::vector<float> x(kHidden);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : x) v = uniform(rng);
  std::vector<float> gate(kActive * kInter), up(kActive * kInter), y(kActive * kHidden);
  std::vector<int64_t> order(static_cast<size_t>(n_experts));
  for (int64_t e = 0; e < n_experts; ++e) order[e] = e;

  const auto run_kernels = [&](const int64_t* chosen) {
    std::atomic<int64_t> next{0};
    pool.ParallelFor(static_cast<size_t>(pool.size()), 1, [&](size_t, size_t, int) {
      for (int64_t t; (t = next.fetch_add(1)) < kActive;) {
        const uint8_t* expert = base + chosen[t] * expert_stride;
        const std::span<float> g(gate.data() + t * kInter, kInter);
        const std::span<float> u(up.data() + t * kInter, kInter);
        MatMul(g, x, 1, matrix(expert + matrix_offset[0], kInter, kHidden), nullptr);
        MatMul(u, x, 1, matrix(expert + matrix_offset[1], kInter, kHidden), nullptr);
        SiluMul(g, g, u);
        MatMul(std::span<float>(y.data() + t * kHidden, kHidden), g, 1,
               matrix(expert + matrix_offset[2], kHidden, kInter), nullptr);
      }
    });
  };
  std::atomic<uint64_t> sink{0};
  const auto run_reads = [&](const int64_t* chosen) {
    std::atomic<int64_t> next{0};
    pool.ParallelFor(static_cast<size_t>(pool.size()), 1, [&](size_t, size_t, int) {
      uint64_t local = 0;
      for (int64_t t; (t = next.fetch_add(1)) < kActive;) {
        const uint8_t* expert = base + chosen[t] * expert_stride;
        local ^= ReadFourStreams(expert + matrix_offset[0], padded(in_bytes));
        local ^= ReadFourStreams(expert + matrix_offset[1], padded(in_bytes));
        local ^= ReadFourStreams(expert + matrix_offset[2], padded(out_bytes));
      }
      sink.fetch_xor(local, std::memory_order_relaxed);
    });
  };
  const auto seconds = [](auto&& step) {
    const auto begin = std::chrono::steady_clock::now();
    step();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  };
  double kernel_seconds = 0.0, read_seconds = 0.0;
  int64_t iteration = 0;
  for (auto _ : state) {
    // Eight distinct experts, as a token's top-k are.
    for (int64_t i = 0; i < kActive; ++i) std::swap(order[i], order[i + rng() % (n_experts - i)]);
    double kernels = 0.0;
    if (iteration++ % 2 == 0) {
      kernels = seconds([&] { run_kernels(order.data()); });
      read_seconds += seconds([&] { run_reads(order.data()); });
    } else {
      read_seconds += seconds([&] { run_reads(order.data()); });
      kernels = seconds([&] { run_kernels(order.data()); });
    }
    kernel_seconds += kernels;
    state.SetIterationTime(kernels);
    benchmark::DoNotOptimize(y.data());
  }
  benchmark::DoNotOptimize(sink.load());
  const double kernel_bytes = static_cast<double>(kActive * (2 * in_bytes + out_bytes));
  const double read_bytes =
      static_cast<double>(kActive * (2 * padded(in_bytes) + padded(out_bytes)));
  const double kernel_rate = kernel_bytes * static_cast<double>(iteration) / kernel_seconds * 1e-9;
  const double read_rate = read_bytes * static_cast<double>(iteration) / read_seconds * 1e-9;
  state.SetLabel(fp8 ? "FP8 " + ActiveSimdTargetName()
                     : std::string(QuantFormatName(format)) + " " + QuantMatMulTarget());
  state.counters["GB/s"] = kernel_rate;
  state.counters["reads_GB/s"] = read_rate;
  state.counters["%reads"] = 100.0 * kernel_rate / read_rate;
  state.counters["read_GB/s"] = ReadBandwidth(pool);
  state.counters["%read_bw"] = 100.0 * kernel_rate / ReadBandwidth(pool);
}

void QuantArgs(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t n : {1, 128})
      for (auto [rows, cols] :
           {std::pair<int64_t, int64_t>{2048, 2048}, {1408, 2048}, {2048, 1408}})
        for (int64_t format : {0, 1}) b->Args({format, n, rows, cols, threads});
  b->ArgNames({"format", "n", "rows", "cols", "threads"});
  b->UseRealTime();
}

BENCHMARK(BM_QuantMatMul)->Apply(QuantArgs);
BENCHMARK(BM_ExpertStep)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->ArgNames({"format", "threads"})
    ->UseManualTime()
    ->MinTime(2.0);
BENCHMARK(BM_AbsorbQueries)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 4, 64}, {128}, {512}})
    ->ArgNames({"form", "n", "rows", "cols"});
BENCHMARK(BM_QuantMatMulRef)
    ->Args({0, 1, 256, 2048})
    ->Args({1, 1, 256, 2048})
    ->ArgNames({"format", "n", "rows", "cols"});

}  // namespace
}  // namespace whale
