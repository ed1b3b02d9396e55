// Training throughput of a ~10M-parameter DeepSeek-V3-shaped model (MLA, MoE with a shared
// expert, MTP): tokens/s of a full step (forward, backward, AdamW) and the achieved FLOP/s,
// counted as 6 · N_active · tokens + attention (12 · layers · heads · (qk + v) / 2 · T per token:
// the causal half of QKᵀ and PV, forward and backward), against the F32 GEMM peak measured in the
// same process on a square 512³ product. Reported as counters: tok/s, GFLOP/s, peak GFLOP/s, ratio.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "kernels/gemm.h"
#include "model/layout.h"
#include "model/presets.h"
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

void BM_TrainStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t seq_len = 256, batch_tokens = 2048;
  ThreadPool pool(threads);
  const ModelConfig config = BenchConfig();
  ParameterSet<float> params(config);
  InitializeParameters(params, 1);
  RandomSource data;
  TrainConfig c;
  c.init_preset = "bench";
  c.out = "/tmp/whale-train-bench";
  c.steps = 1000000;
  c.seq_len = seq_len;
  c.batch_tokens = batch_tokens;
  Trainer trainer(c, params, data, pool, "");
  trainer.Step();  // warm up: first-touch of every buffer
  for (auto _ : state) trainer.Step();
  const ParameterCounts counts = CountParameters(config);
  // Active parameters doing arithmetic per token: main model without the embedding lookup, plus
  // the MTP block (its embedding and head are the main ones, the head counted once more).
  const double active = static_cast<double>(counts.main_active_compute()) +
                        static_cast<double>(counts.mtp_unique) +
                        static_cast<double>(config.vocab_size * config.hidden_size);
  const double attention = 12.0 * static_cast<double>(config.num_stored_layers()) *
                           static_cast<double>(config.num_attention_heads) *
                           static_cast<double>(config.qk_head_dim() + config.v_head_dim) / 2.0 *
                           static_cast<double>(seq_len);
  const double flop_per_token = 6.0 * active + attention;
  const double tokens = static_cast<double>(batch_tokens) * static_cast<double>(state.iterations());
  state.counters["tok/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(tokens * flop_per_token * 1e-9, benchmark::Counter::kIsRate);
  const double peak = GemmPeak(pool);
  state.counters["peak_GFLOP/s"] = peak * 1e-9;
  state.counters["params_M"] = static_cast<double>(params.numel()) * 1e-6;
  state.counters["active_M"] = active * 1e-6;
}
BENCHMARK(BM_TrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

}  // namespace
}  // namespace whale
