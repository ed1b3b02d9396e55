// Sampler: picks the next token from a row of logits. Greedy, temperature, top-k, top-p (nucleus),
// min-p, and repetition / presence / frequency penalties, reproducible from a seed.
//
// Order of operations in Sample(), each step skipped when its setting is neutral:
//   0. logit_bias: logit[t] += bias for each (t, bias) pair (OpenAI's logit_bias, added to the
//      raw logits before anything else; -100 effectively bans a token, +100 forces it).
//   1. penalties, on the logits in place, for each distinct token t of `previous_tokens` seen c
//      times (llama.cpp / vLLM / OpenAI conventions, in llama.cpp's and vLLM's order):
//        repetition: logit[t] /= r if logit[t] > 0, else logit[t] *= r
//        frequency:  logit[t] -= c * frequency_penalty
//        presence:   logit[t] -= presence_penalty
//   2. temperature 0: the argmax of the penalized logits (ties to the lowest id); done.
//   3. temperature: scaled = logit / temperature (in double, on a scratch copy).
//   4. min-p: keep tokens with p >= min_p * p_max (the same set before or after any
//      renormalization, since the most likely token always stays).
//   5. top-k: keep the k most likely (ties to the lower id).
//   6. top-p: keep the most likely tokens, in order, up to and including the first at which their
//      cumulative probability (renormalized over what steps 4-5 kept) reaches top_p.
//   7. draw one token from the survivors' renormalized distribution with the sampler's RNG.
// Steps 1-7 follow vLLM v1's sampler (min-p before top-k/top-p; HF applies min-p last, which gives
// a different nucleus when both min-p and top-p are set).
//
// Which tokens count as "previous" (prompt and output, or output only, or a window) is the
// caller's choice; OpenAI and vLLM count only generated tokens for presence/frequency.
// Stop tokens and the token budget belong to the generation loop, not here.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace whale {

struct SamplerConfig {
  float temperature = 1.0f;         // 0 = greedy; otherwise finite and > 0
  int32_t top_k = 0;                // 0 = off; otherwise keep the k most likely tokens
  float top_p = 1.0f;               // 1 = off; in (0, 1]
  float min_p = 0.0f;               // 0 = off; in [0, 1]
  float repetition_penalty = 1.0f;  // 1 = off; > 0 (> 1 discourages repeats)
  float presence_penalty = 0.0f;    // 0 = off; in [-2, 2] as in the OpenAI API
  float frequency_penalty = 0.0f;   // 0 = off; in [-2, 2]
  uint64_t seed = 0;
  // (token id, bias in [-100, 100]) pairs; ids outside the vocabulary are an error in Sample().
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Throws Error naming the field, its value and the accepted range.
  void Validate() const;
  bool greedy() const { return temperature == 0.0f; }
};

// xoshiro256** seeded through splitmix64: small state, fast, and the same sequence everywhere.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_[4];
};

class Sampler {
 public:
  // Validates `config` (throws Error) and seeds the RNG from config.seed.
  explicit Sampler(const SamplerConfig& config);

  // Returns the next token id in [0, logits.size()). Applies the penalties to `logits` in place
  // (on return they hold the penalized logits, before temperature). Throws Error if a previous
  // token is outside [0, logits.size()), a logit is NaN or +inf, or every logit is -inf.
  // Deterministic: the same config, the same sequence of inputs, the same tokens. Scratch memory
  // is sized on the first call (and when the vocabulary grows); later calls do not allocate.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> previous_tokens);

  const SamplerConfig& config() const { return config_; }

 private:
  struct Candidate {
    double scaled;  // logit / temperature
    double weight;  // exp(scaled - max scaled): the unnormalized probability, in (0, 1]
    int32_t id;
  };

  void ApplyPenalties(std::span<float> logits, std::span<const int32_t> previous_tokens);
  // Keeps the prefix of candidates_, by decreasing probability, that top-p selects.
  void ApplyTopP(double total_weight);

  SamplerConfig config_;
  Xoshiro256 rng_;
  std::vector<Candidate> candidates_;  // [<= vocab] survivors of the filters
  std::vector<int32_t> counts_;        // [vocab] occurrences in previous_tokens, zero between calls
  std::vector<int32_t> seen_;          // [<= n_previous] distinct ids with counts_ > 0
};

}  // namespace whale
