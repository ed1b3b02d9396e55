// Helpers of the T-model tests: a small model shape, deterministic data sources, temp folders.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "../test_temp.h"
#include "model/config.h"
#include "model/presets.h"
#include "train/data.h"

namespace whale::testing {

// tiny-v3's structure (MLA with q_lora, a dense layer then MoE with groups, a shared expert,
// noaux_tc routing, YaRN, MTP) at a size that trains in milliseconds per step.
inline ModelConfig MicroConfig(int64_t vocab) {
  ModelConfig c = FindPreset("tiny-v3").config;
  c.vocab_size = vocab;
  c.hidden_size = 48;
  c.intermediate_size = 64;
  c.moe_intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.q_lora_rank = 32;
  c.kv_lora_rank = 16;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 16;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 4;
  c.topk_group = 2;
  ValidateModelConfig(c, "MicroConfig");
  return c;
}

// Batch k holds pseudo-random tokens drawn from seed and k: a source that can be replayed.
class RandomTokenSource : public DataSource {
 public:
  RandomTokenSource(int64_t vocab, uint64_t seed, int64_t distinct = 0)
      : seed_(seed), distinct_(distinct > 0 ? distinct : vocab) {}
  void Next(TokenBatch& b) override {
    std::mt19937_64 rng(seed_ * 1000003 + static_cast<uint64_t>(drawn_++));
    const int64_t n = b.n_seqs * b.seq_len;
    std::vector<int32_t> stream(n + b.n_seqs);
    for (auto& t : stream) t = static_cast<int32_t>(rng() % distinct_);
    b.inputs.resize(n);
    b.targets.resize(n);
    b.segments.assign(n, 0);
    for (int64_t s = 0; s < b.n_seqs; ++s)
      for (int64_t i = 0; i < b.seq_len; ++i) {
        b.inputs[s * b.seq_len + i] = stream[s * (b.seq_len + 1) + i];
        b.targets[s * b.seq_len + i] = stream[s * (b.seq_len + 1) + i + 1];
      }
  }
  std::string Describe() const override { return "random tokens"; }
  int64_t drawn() const { return drawn_; }

 private:
  uint64_t seed_;
  int64_t distinct_;
  int64_t drawn_ = 0;
};

inline std::string TempDir(const std::string& name) {
  return TestTempDir("tmodel-" + name);
}

}  // namespace whale::testing
