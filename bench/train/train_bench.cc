// Training throughput of a ~10M-parameter DeepSeek-V3-shaped model (MLA, MoE with a shared
// expert, MTP): tokens/s of a full step (forward, backward, AdamW) and the achieved FLOP/s,
// counted as 6 · N_active · tokens + attention (3 · layers · heads · (qk + v) · T per token: QKᵀ
// and PV over the causal half, 2 · (qk + v) · T/2 per head forward, backward twice that), against
// the F32 GEMM peak measured in the same process on a square 512³ product. Reported as counters:
// tok/s, GFLOP/s, peak GFLOP/s, ratio (GFLOP/s over peak).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "kernels/gemm.h"
#include "model/layout.h"
#include "model/presets.h"
#include "train/ops_profile.h"
#include "train/trainer.h"

namespace whale {
namespace {

ModelConfig BenchConfig() {
  ModelConfig c = FindPreset("tiny-v3").config;
  c.vocab_size = 4096;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.moe_intermediate_size = 128;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.q_lora_rank = 128;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 16;
  c.num_experts_per_tok = 4;
  ValidateModelConfig(c, "bench");
  return c;
}

class RandomSource : public DataSource {
 public:
  void Next(TokenBatch& b) override {
    const int64_t n = b.n_seqs * b.seq_len;
    b.inputs.resize(n);
    b.targets.resize(n);
    b.segments.assign(n, 0);
    for (int64_t i = 0; i < n; ++i) {
      b.inputs[i] = static_cast<int32_t>(rng_() % 4096);
      b.targets[i] = static_cast<int32_t>(rng_() % 4096);
    }
  }
  std::string Describe() const override { return "random"; }

 private:
  std::mt19937_64 rng_{1};
};

double GemmPeak(ThreadPool& pool) {
  const int64_t n = 512;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  Gemm(c, a, b, n, n, n, Trans::kNo, Trans::kYes, false, &pool);  // warm up
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    Gemm(c, a, b, n, n, n, Trans::kNo, Trans::kYes, false, &pool);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n / s);
  }
  return best;
}

// The benchmarked run: the model above on random tokens, 8 sequences of 256 per step.
struct BenchRun {
  static constexpr int64_t kSeqLen = 256, kBatchTokens = 2048;
  explicit BenchRun(int threads) : pool(threads), config(BenchConfig()), params(config) {
    InitializeParameters(params, 1);
    TrainConfig c;
    c.init_preset = "bench";
    c.out = "/tmp/whale-train-bench";
    c.steps = 1000000;
    c.seq_len = kSeqLen;
    c.batch_tokens = kBatchTokens;
    trainer = std::make_unique<Trainer>(c, params, data, pool, "");
    trainer->Step();  // warm up: first-touch of every buffer
  }
  ThreadPool pool;
  ModelConfig config;
  ParameterSet<float> params;
  RandomSource data;
  std::unique_ptr<Trainer> trainer;
};

void BM_TrainStep(benchmark::State& state) {
  BenchRun run(static_cast<int>(state.range(0)));
  const ModelConfig& config = run.config;
  const int64_t seq_len = BenchRun::kSeqLen, batch_tokens = BenchRun::kBatchTokens;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) run.trainer->Step();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const ParameterCounts counts = CountParameters(config);
  // Active parameters doing arithmetic per token: main model without the embedding lookup, plus
  // the MTP block (its embedding and head are the main ones, the head counted once more).
  const double active = static_cast<double>(counts.main_active_compute()) +
                        static_cast<double>(counts.mtp_unique) +
                        static_cast<double>(config.vocab_size * config.hidden_size);
  const double attention = 3.0 * static_cast<double>(config.num_stored_layers()) *
                           static_cast<double>(config.num_attention_heads) *
                           static_cast<double>(config.qk_head_dim() + config.v_head_dim) *
                           static_cast<double>(seq_len);
  const double flop_per_token = 6.0 * active + attention;
  const double tokens = static_cast<double>(batch_tokens) * static_cast<double>(state.iterations());
  state.counters["tok/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(tokens * flop_per_token * 1e-9, benchmark::Counter::kIsRate);
  const double peak = GemmPeak(run.pool);
  state.counters["peak_GFLOP/s"] = peak * 1e-9;
  state.counters["ratio"] = tokens * flop_per_token / seconds / peak;
  state.counters["attn_share"] = attention / flop_per_token;
  state.counters["params_M"] = static_cast<double>(run.params.numel()) * 1e-6;
  state.counters["active_M"] = active * 1e-6;
}
BENCHMARK(BM_TrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// Where a step's time goes: the same run with per-op timers (ops_profile.h), printed as a table
// of milliseconds per step, largest first; "untimed" is the step minus every timed op.
void BM_StepProfile(benchmark::State& state) {
  BenchRun run(static_cast<int>(state.range(0)));
  OpProfile profile;
  run.trainer->set_profile(&profile);
  double step_s = 0, step_cpu_s = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = OpTimer::ProcessCpuSeconds();
    run.trainer->Step();
    step_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    step_cpu_s += OpTimer::ProcessCpuSeconds() - cpu_start;
  }
  run.trainer->set_profile(nullptr);
  const double steps = static_cast<double>(state.iterations());
  struct Row {
    double cpu_s, wall_s;
    std::string name;
  };
  std::vector<Row> rows;
  double timed = 0, timed_cpu = 0;
  for (const auto& [name, seconds] : profile.seconds) {
    rows.push_back({profile.cpu_seconds.at(name), seconds, name});
    timed += seconds;
    timed_cpu += profile.cpu_seconds.at(name);
  }
  rows.push_back({step_cpu_s - timed_cpu, step_s - timed, "untimed"});
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.cpu_s > b.cpu_s; });
  std::printf("per-op time, %d thread(s), per step: %.1f ms wall, %.1f ms CPU (all threads)\n",
              run.pool.size(), 1e3 * step_s / steps, 1e3 * step_cpu_s / steps);
  std::printf("  %9s %6s %9s  %s\n", "CPU ms", "CPU %", "wall ms", "op");
  for (const Row& r : rows)
    std::printf("  %9.2f %5.1f%% %9.2f  %s\n", 1e3 * r.cpu_s / steps, 100.0 * r.cpu_s / step_cpu_s,
                1e3 * r.wall_s / steps, r.name.c_str());
}
BENCHMARK(BM_StepProfile)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(8);

}  // namespace
}  // namespace whale
