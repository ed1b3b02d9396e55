// whale bench: prefill and decode speed of a checkpoint, and how close they are to what this
// machine allows: its read bandwidth and its MatMul peak, measured in the same run with the
// same threads (kernels/probe.h).
//
// Rooflines:
//   decode  = bytes read per decoded token x decode tok/s / read bandwidth, where the bytes are
//             counted from the actual tensor types: attention, dense FFN, shared experts, the
//             router, top-k routed experts per MoE layer, the output head and one embedding row,
//             plus the latent KV cache read at the mean decode position. Each round's decode
//             is divided by the bandwidth read right after it; the median over rounds.
//   prefill = FLOPs per prompt token x prefill tok/s / MatMul peak (for the weight type doing
//             most multiply-adds), FLOPs = 2 per weight element of the same active set plus
//             absorbed attention (scores and values over the latent cache) at the mean prompt
//             position.
//   batched = the same FLOPs per token (at the mean decode position) x batched tok/s / MatMul
//             peak; and against the step's own bound, the larger of its FLOPs / peak and its
//             bytes / read bandwidth, the bytes counting the routed experts the steps read
//             (Model::routed_experts_read) and every sequence's KV cache.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "command.h"
#include "kernels/matmul.h"
#include "kernels/probe.h"
#include "kernels/simd.h"
#include "kernels/stream_prefetch.h"
#include "model/model.h"
#include "model/weights.h"
#include "util/error.h"

namespace {

struct BenchFlags {
  std::string model;
  int64_t prompt = 512;
  int64_t decode = 128;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int repeat = 1;
  bool json = false;
  int64_t bandwidth_mib = 1024;
  int64_t peak_tokens = 128;  // tokens of the matmul peak probe's product (a prefill batch)
  int64_t batch = 1;          // sequences decoded together in the batched-decode measurement
  bool profile = false;       // time the decode's stages (Model::set_profiling)
  double warmup = 0;          // seconds of untimed rounds before the measured ones
};

double WeightBytes(const whale::WeightMatrix& w) {
  if (w.data == nullptr) return 0.0;
  const double elements = static_cast<double>(w.rows) * static_cast<double>(w.cols);
  const double groups = static_cast<double>(w.rows) * static_cast<double>((w.cols + 31) / 32);
  switch (w.dtype) {
    case whale::DType::I8:
      return groups * (32 + 2);
    case whale::DType::U8:
      return groups * (16 + 2);
    case whale::DType::F8_E4M3: {
      const double grid = static_cast<double>(((w.rows + 127) / 128) * ((w.cols + 127) / 128));
      return elements + 4 * grid;
    }
    default:
      return elements * static_cast<double>(whale::SizeOf(w.dtype));
  }
}

// The stages of whale::ForwardProfile, in its order, plus what none of them covers.
enum Stage { kProjections, kCore, kRouter, kExperts, kDenseFfn, kHead, kOther, kStages };
constexpr const char* kStageNames[kStages] = {
    "attention_projections", "attention_core", "router", "experts", "dense_ffn", "head", "other"};

// What one token reads and computes through the linear layers.
struct ActiveSet {
  double bytes = 0;                  // weight bytes
  double stage_bytes[kStages] = {};  // the same, by the stage that reads them
  double elements = 0;               // weight elements (2 FLOPs each)
  double expert_bytes = 0;           // one routed expert's weight bytes, summed over the MoE layers
  int64_t moe_layers = 0;
  std::map<whale::DType, double> elements_by_dtype;  // where the prefill FLOPs are
  void Add(const whale::WeightMatrix& w, Stage stage, double times = 1.0) {
    if (w.data == nullptr) return;
    bytes += times * WeightBytes(w);
    stage_bytes[stage] += times * WeightBytes(w);
    elements += times * static_cast<double>(w.rows) * static_cast<double>(w.cols);
    elements_by_dtype[w.dtype] += times * static_cast<double>(w.rows) * static_cast<double>(w.cols);
  }
  void AddMlp(const whale::MlpWeights& m, Stage stage, double times = 1.0) {
    Add(m.gate, stage, times);
    Add(m.up, stage, times);
    Add(m.down, stage, times);
  }
};

ActiveSet CountActive(const whale::Weights& weights) {
  const whale::ModelConfig& c = weights.config();
  ActiveSet set;
  for (const whale::BlockWeights& block : weights.layers) {
    const whale::MlaWeights& a = block.attention;
    for (const whale::WeightMatrix* w : {&a.q_a, &a.q_b, &a.q, &a.kv_a, &a.o})
      set.Add(*w, kProjections);
    // Absorbed attention reads all of kv_b in its stored type: the key rows W_UK through
    // MatMulUntransposed, the value rows W_UV through MatMul.
    set.Add(a.kv_b, kCore);
    if (!block.is_moe) {
      set.AddMlp(block.dense, kDenseFfn);
      continue;
    }
    set.Add(block.moe.router, kRouter);
    if (block.moe.shared) set.AddMlp(*block.moe.shared, kExperts);
    // Random routing spreads tokens evenly; every expert of a layer has the same shape and type.
    if (!block.moe.experts.empty()) {
      const whale::MlpWeights& e = block.moe.experts.front();
      set.AddMlp(e, kExperts, static_cast<double>(c.num_experts_per_tok));
      set.expert_bytes += WeightBytes(e.gate) + WeightBytes(e.up) + WeightBytes(e.down);
      ++set.moe_layers;
    }
  }
  set.Add(weights.lm_head, kHead);
  // One embedding row.
  const double embed_row =
      WeightBytes(weights.embed) / static_cast<double>(std::max<int64_t>(1, c.vocab_size));
  set.bytes += embed_row;
  set.stage_bytes[kOther] += embed_row;
  return set;
}

// FLOPs of absorbed attention over the latent cache for one token at `position` (all layers);
// the query/output absorption through kv_b is counted with the weights (CountActive).
double AttentionFlops(const whale::ModelConfig& c, double position) {
  const double h = static_cast<double>(c.num_attention_heads);
  const double r = static_cast<double>(c.kv_lora_rank);
  const double row = static_cast<double>(c.latent_cache_values());
  const double per_position = h * (row + r);  // scores over [latent | k_pe], then values
  return 2.0 * static_cast<double>(c.num_hidden_layers) * per_position * (position + 1);
}

// The weight type doing most of a token's multiply-adds: its matrix-product peak bounds prefill.
// (By bytes, a BF16 output head can outweigh int4 experts that do most of the arithmetic.)
whale::DType DominantDType(const ActiveSet& set) {
  whale::DType best = whale::DType::F32;
  double most = -1;
  for (const auto& [dtype, elements] : set.elements_by_dtype)
    if (elements > most) most = elements, best = dtype;
  return best;
}

double Seconds(std::chrono::steady_clock::time_point begin) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

int Bench(const BenchFlags& f) {
  if (f.prompt < 1 || f.decode < 1) whale::Fail("-p and -n must be at least 1");
  if (f.threads < 1) whale::Fail("-t ", f.threads, ": expected at least one thread");
  if (f.repeat < 1) whale::Fail("--repeat ", f.repeat, ": expected at least 1");
  if (f.batch < 1) whale::Fail("--batch ", f.batch, ": expected at least 1");
  if (f.peak_tokens < 1) whale::Fail("--peak-tokens ", f.peak_tokens, ": expected at least 1");
  if (!(f.warmup >= 0)) whale::Fail("--warmup ", f.warmup, ": expected seconds, 0 or more");
  const whale::Weights weights = whale::Weights::Load(f.model);
  const whale::ModelConfig& c = weights.config();
  whale::ThreadPool pool(f.threads);
  whale::ModelOptions options;
  options.max_batch_tokens = std::max(f.prompt, f.batch);
  options.max_context = f.prompt + f.decode;
  whale::Model model(weights, pool, options);

  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> prompt(f.prompt);
  for (int32_t& t : prompt) t = token(rng);
  std::vector<float> logits(c.vocab_size);  // [1, vocab]
  std::vector<double> prefill_rates, decode_rates;
  double profile_seconds[kStages] = {};  // --profile: each stage's decode time, all rounds
  double decode_seconds = 0;             // all rounds' decode time
  // The read bandwidth, measured right after each round's decode: on a shared VM it swings
  // between runs (the 2-core development VM read 30-80 GB/s with 2 threads within one hour), and a
  // ratio of a decode to a probe minutes apart said more about the VM than about the decode.
  std::vector<double> bandwidths;
  whale::ReadBandwidthOptions bw_options;
  bw_options.bytes = static_cast<size_t>(f.bandwidth_mib) << 20;
  whale::KvCache cache = model.NewCache(options.max_context);
  // One greedy decode step of the batch-1 sequence: the token after `last`.
  const auto decode_step = [&](int32_t last) {
    const whale::SequenceChunk step{&cache, {&last, 1}, false};
    model.Forward({&step, 1}, logits);
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  const auto prefill_prompt = [&] {
    cache.Clear();
    const whale::SequenceChunk chunk{&cache, prompt, false};
    model.Forward({&chunk, 1}, logits);
  };
  // One untimed prefill and decode step first: the first pass pays the page faults of the
  // model's scratch and the kernels' per-thread buffers (small-v3 FP8, 2 threads, 128 tokens:
  // a first prefill at 256 tok/s against 459 for the next ones).
  prefill_prompt();
  decode_step(prompt.back());
  // --warmup: untimed rounds (prefill, then the decode) until that many seconds have passed. On
  // the development VM the memory a large model was just copied into reads slowly for a minute or
  // two (the host's doing, not the guest's: no guest page faults): V2-Lite int8 decoded at 150-250
  // ms a token for its first 300 steps after loading, 72 ms for the next 600, then 53 ms for good.
  const auto warmup_begin = std::chrono::steady_clock::now();
  int warmup_rounds = 0;
  while (Seconds(warmup_begin) < f.warmup) {
    prefill_prompt();
    int32_t next = prompt.back();
    for (int64_t i = 0; i < f.decode && Seconds(warmup_begin) < f.warmup; ++i)
      next = decode_step(next);
    ++warmup_rounds;
  }
  const double warmup_seconds = Seconds(warmup_begin);
  for (int r = 0; r < f.repeat; ++r) {
    auto begin = std::chrono::steady_clock::now();
    prefill_prompt();
    prefill_rates.push_back(static_cast<double>(f.prompt) / Seconds(begin));
    int32_t next = prompt.back();
    model.set_profiling(f.profile);
    begin = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < f.decode; ++i) next = decode_step(next);
    const double seconds = Seconds(begin);
    decode_rates.push_back(static_cast<double>(f.decode) / seconds);
    decode_seconds += seconds;
    const whale::ForwardProfile& p = model.profile();
    const double stages[kOther] = {
        p.attention_projections, p.attention_core, p.router, p.experts, p.dense_ffn, p.head};
    for (int s = 0; s < kOther; ++s) {
      profile_seconds[s] += stages[s];
      profile_seconds[kOther] -= stages[s];
    }
    profile_seconds[kOther] += seconds;
    model.set_profiling(false);
    bandwidths.push_back(whale::MeasureReadBandwidth(&pool, bw_options));
  }

  // Batched decode: `batch` sequences, each after the same prompt, advance one token per step in
  // one Forward (what continuous batching does), so each step reads the weights once for all.
  std::vector<double> batch_rates;
  int64_t batch_experts_read = 0;  // routed experts read by the batched decode steps, all layers
  if (f.batch > 1) {
    std::vector<whale::KvCache> caches;
    for (int64_t b = 0; b < f.batch; ++b) caches.push_back(model.NewCache(options.max_context));
    std::vector<float> batch_logits(static_cast<size_t>(f.batch * c.vocab_size));  // [batch, vocab]
    std::vector<int32_t> next(static_cast<size_t>(f.batch));                       // [batch]
    std::vector<whale::SequenceChunk> steps(static_cast<size_t>(f.batch));
    for (int r = 0; r < f.repeat; ++r) {
      for (int64_t b = 0; b < f.batch; ++b) {
        caches[b].Clear();
        const whale::SequenceChunk chunk{&caches[b], prompt, false};
        model.Forward({&chunk, 1}, logits);
        next[b] = static_cast<int32_t>((prompt.back() + b) % c.vocab_size);
      }
      const int64_t experts_read_before = model.routed_experts_read();
      const auto begin = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < f.decode; ++i) {
        for (int64_t b = 0; b < f.batch; ++b) steps[b] = {&caches[b], {&next[b], 1}, false};
        model.Forward(steps, batch_logits);
        for (int64_t b = 0; b < f.batch; ++b) {
          const auto row = batch_logits.begin() + b * c.vocab_size;
          next[b] = static_cast<int32_t>(std::max_element(row, row + c.vocab_size) - row);
        }
      }
      batch_rates.push_back(static_cast<double>(f.decode * f.batch) / Seconds(begin));
      batch_experts_read += model.routed_experts_read() - experts_read_before;
    }
  }

  // The machine's limits, measured after the model so that its pages are already resident.
  const double bandwidth = Median(bandwidths);
  const ActiveSet active = CountActive(weights);
  whale::DType peak_dtype = DominantDType(active);
  double peak = 0.0;
  whale::MatMulPeakOptions peak_options;
  peak_options.tokens = f.peak_tokens;
  try {
    peak = whale::MeasureMatMulPeak(peak_dtype, &pool, peak_options);
  } catch (const whale::Error&) {
    peak_dtype = whale::DType::F32;  // a type the probe does not build: F32 as a stand-in
    peak = whale::MeasureMatMulPeak(peak_dtype, &pool, peak_options);
  }

  const double decode_position = static_cast<double>(f.prompt) + static_cast<double>(f.decode) / 2;
  const double kv_bytes = static_cast<double>(c.num_hidden_layers) * (decode_position + 1) *
                          static_cast<double>(c.latent_cache_values()) * sizeof(float);
  const double decode_bytes = active.bytes + kv_bytes;
  const double prefill_flops =
      2.0 * active.elements + AttentionFlops(c, static_cast<double>(f.prompt - 1) / 2);
  const double prefill = Median(prefill_rates), decode = Median(decode_rates);
  const double batch_decode = Median(batch_rates);
  // Batched decode is bound by arithmetic once the weights are shared: FLOPs per token (the
  // active set plus attention at the mean decode position) against the MatMul peak.
  const double decode_flops = 2.0 * active.elements + AttentionFlops(c, decode_position);
  const double batch_roofline = decode_flops * batch_decode / (peak * 1e9);
  // But a routed expert is read only when a sequence of the step chose it: with a token or two
  // per expert a step is bound by memory instead (small-v3, 8 sequences: ~31 of 64 experts per
  // layer). The step's bound is the larger of its bytes over the read bandwidth (the weights every
  // step reads, the experts these steps actually read, every sequence's cache) and its FLOPs over
  // the MatMul peak.
  const double batch_steps = static_cast<double>(f.decode) * f.repeat;
  const double experts_per_layer = active.moe_layers > 0 ? static_cast<double>(batch_experts_read) /
                                                               (batch_steps * active.moe_layers)
                                                         : 0.0;
  const double batch_step_bytes =
      active.bytes +
      (experts_per_layer - static_cast<double>(c.num_experts_per_tok)) * active.expert_bytes +
      static_cast<double>(f.batch) * kv_bytes;
  const double batch_memory_seconds = batch_step_bytes / (bandwidth * 1e9);
  const double batch_compute_seconds = static_cast<double>(f.batch) * decode_flops / (peak * 1e9);
  const bool batch_memory_bound = batch_memory_seconds >= batch_compute_seconds;
  const double batch_bound_roofline = std::max(batch_memory_seconds, batch_compute_seconds) *
                                      batch_decode / static_cast<double>(f.batch);
  // Each round's decode against the bandwidth read right after it, the median over rounds.
  std::vector<double> decode_ratios;
  for (size_t r = 0; r < decode_rates.size(); ++r)
    decode_ratios.push_back(decode_bytes * decode_rates[r] / (bandwidths[r] * 1e9));
  const double decode_roofline = Median(decode_ratios);
  const double prefill_roofline = prefill_flops * prefill / (peak * 1e9);
  // --profile: each stage's share of the decode, the bytes it reads per token (the latent cache
  // with the attention core) and the rate it reads them at.
  struct StageFigures {
    double ms_per_token, share, bytes, gb_s;
  };
  std::vector<StageFigures> stages;
  if (f.profile) {
    const double tokens = static_cast<double>(f.decode) * f.repeat;
    for (int s = 0; s < kStages; ++s) {
      const double per_token = profile_seconds[s] / tokens;
      const double bytes = active.stage_bytes[s] + (s == kCore ? kv_bytes : 0.0);
      stages.push_back({per_token * 1e3, profile_seconds[s] / decode_seconds, bytes,
                        per_token > 0 ? bytes / per_token * 1e-9 : 0.0});
    }
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;

  if (f.json) {
    nlohmann::ordered_json j;
    j["model"] = f.model;
    j["threads"] = f.threads;
    j["simd_target"] = whale::ActiveSimdTargetName();
    j["stream_prefetch"] = whale::RunningStreamPrefetch();
    j["prompt_tokens"] = f.prompt;
    j["decode_tokens"] = f.decode;
    j["repeat"] = f.repeat;
    j["warmup_seconds"] = warmup_seconds;
    j["warmup_rounds"] = warmup_rounds;
    j["prefill_tok_s"] = prefill;
    j["decode_tok_s"] = decode;
    j["read_bandwidth_gb_s"] = bandwidth;
    j["matmul_peak_dtype"] = std::string(whale::Name(peak_dtype));
    j["matmul_peak_gflop_s"] = peak;
    j["matmul_peak_tokens"] = f.peak_tokens;
    j["decode_weight_bytes_per_token"] = active.bytes;
    j["decode_kv_bytes_per_token"] = kv_bytes;
    j["prefill_flop_per_token"] = prefill_flops;
    j["decode_roofline"] = decode_roofline;
    // Every round's figures in order, for the spread behind the medians.
    j["rounds"] = {{"prefill_tok_s", prefill_rates},
                   {"decode_tok_s", decode_rates},
                   {"read_bandwidth_gb_s", bandwidths},
                   {"decode_roofline", decode_ratios}};
    j["prefill_roofline"] = prefill_roofline;
    if (f.batch > 1) {
      j["batch"] = f.batch;
      j["batch_decode_tok_s"] = batch_decode;
      j["batch_decode_speedup"] = batch_decode / decode;
      j["batch_decode_roofline"] = batch_roofline;
      j["batch_experts_per_moe_layer"] = experts_per_layer;
      j["batch_decode_bytes_per_step"] = batch_step_bytes;
      j["batch_decode_bound"] = batch_memory_bound ? "memory" : "compute";
      j["batch_decode_bound_roofline"] = batch_bound_roofline;
    }
    if (f.profile) {
      nlohmann::ordered_json profile = nlohmann::ordered_json::array();
      for (int s = 0; s < kStages; ++s)
        profile.push_back({{"stage", kStageNames[s]},
                           {"ms_per_token", stages[s].ms_per_token},
                           {"share", stages[s].share},
                           {"bytes_per_token", stages[s].bytes},
                           {"read_gb_s", stages[s].gb_s},
                           {"read_bandwidth_fraction", stages[s].gb_s / bandwidth}});
      j["decode_profile"] = profile;
    }
    j["peak_rss_mib"] = peak_rss_mib;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model            %s (%d threads, %s, stream prefetch %s)\n", f.model.c_str(),
              f.threads, whale::ActiveSimdTargetName().c_str(),
              whale::RunningStreamPrefetch() ? "on" : "off");
  std::printf("prefill          %8.2f tok/s  (%lld tokens, median of %d)\n", prefill,
              static_cast<long long>(f.prompt), f.repeat);
  std::printf("decode           %8.2f tok/s  (%lld tokens, batch 1)\n", decode,
              static_cast<long long>(f.decode));
  if (f.batch > 1)
    std::printf("batched decode   %8.2f tok/s  (%lld sequences together, %.2fx batch 1)\n",
                batch_decode, static_cast<long long>(f.batch), batch_decode / decode);
  std::printf("read bandwidth   %8.2f GB/s  (median of %d, each right after a decode)\n", bandwidth,
              f.repeat);
  std::printf("matmul peak      %8.2f GFLOP/s (%s, %lld x 2048 x 2048)\n", peak,
              std::string(whale::Name(peak_dtype)).c_str(), static_cast<long long>(f.peak_tokens));
  std::printf("decode bytes     %8.1f MB/token (weights %.1f + KV cache %.1f)\n",
              decode_bytes * 1e-6, active.bytes * 1e-6, kv_bytes * 1e-6);
  std::printf("prefill FLOPs    %8.2f GFLOP/token\n", prefill_flops * 1e-9);
  std::printf("decode roofline  %8.1f %% of read bandwidth\n", 100 * decode_roofline);
  if (f.repeat > 1) {
    std::printf("decode rounds   ");
    for (size_t r = 0; r < decode_rates.size(); ++r)
      std::printf(" %.2f tok/s / %.1f GB/s = %.1f %%%s", decode_rates[r], bandwidths[r],
                  100 * decode_ratios[r], r + 1 < decode_rates.size() ? ";" : "\n");
  }
  std::printf("prefill roofline %8.1f %% of matmul peak\n", 100 * prefill_roofline);
  if (f.batch > 1) {
    std::printf("batched bytes    %8.1f MB/step (%.1f of %lld routed experts per MoE layer)\n",
                batch_step_bytes * 1e-6, experts_per_layer,
                static_cast<long long>(c.n_routed_experts));
    std::printf("batched roofline %8.1f %% of matmul peak; %.1f %% of the step's bound (%s)\n",
                100 * batch_roofline, 100 * batch_bound_roofline,
                batch_memory_bound ? "memory: bytes / read bandwidth" : "compute: FLOPs / peak");
  }
  if (f.profile) {
    std::printf("decode profile   %-22s %9s %6s %9s %7s %6s\n", "stage", "ms/token", "share",
                "MB/token", "GB/s", "% bw");
    for (int s = 0; s < kStages; ++s)
      std::printf("                 %-22s %9.3f %5.1f%% %9.1f %7.1f %5.1f%%\n", kStageNames[s],
                  stages[s].ms_per_token, 100 * stages[s].share, stages[s].bytes * 1e-6,
                  stages[s].gb_s, 100 * stages[s].gb_s / bandwidth);
  }
  if (warmup_rounds > 0)
    std::printf("warm-up          %8.1f s untimed (%d rounds)\n", warmup_seconds, warmup_rounds);
  std::printf("peak RSS         %8.0f MiB\n", peak_rss_mib);
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto f = std::make_shared<BenchFlags>();
  sub.add_option("--model", f->model, "model directory (HF layout)")->required();
  sub.add_option("-p,--prompt-tokens", f->prompt, "prompt tokens, one prefill batch")
      ->capture_default_str();
  sub.add_option("-n,--decode-tokens", f->decode, "tokens decoded one at a time")
      ->capture_default_str();
  sub.add_option("-t,--threads", f->threads, "threads, the caller included")->capture_default_str();
  sub.add_option("--repeat", f->repeat, "prefill + decode runs (the median is reported)")
      ->capture_default_str();
  sub.add_option("--bandwidth-mib", f->bandwidth_mib, "buffer size of the bandwidth probe")
      ->capture_default_str();
  sub.add_option("--peak-tokens", f->peak_tokens,
                 "tokens of the matrix-product peak probe ([tokens, 2048] x [2048, 2048]^T)")
      ->capture_default_str();
  sub.add_option("-b,--batch", f->batch,
                 "also decode this many sequences together (batched decode; 1 = off)")
      ->capture_default_str();
  sub.add_flag("--profile", f->profile,
               "also time the decode's stages: attention projections and core, router, experts, "
               "dense FFN, output head");
  sub.add_option("--warmup", f->warmup,
                 "seconds of untimed prefill + decode rounds before the measured ones")
      ->capture_default_str();
  sub.add_flag("--json", f->json, "print one JSON object instead of the table");
  return [f] { return Bench(*f); };
}

}  // namespace

WHALE_COMMAND(bench, "measure prefill and decode speed against this machine's limits", Setup);
