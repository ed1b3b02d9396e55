#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"
#include "util/split_mix.h"

namespace whale {
namespace {

uint64_t RotateLeft(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// Higher probability first; equal logits in id order, so that every choice is reproducible.
bool MoreLikely(const auto& a, const auto& b) {
  return a.scaled > b.scaled || (a.scaled == b.scaled && a.id < b.id);
}

}  // namespace

Xoshiro256::Xoshiro256(uint64_t seed) {
  // splitmix64 spreads any seed (0 included) over the 256-bit state, which must not be all zero.
  for (uint64_t& word : state_) word = SplitMix64Next(seed);
}

uint64_t Xoshiro256::Next() {
  const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
  const uint64_t shifted = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= shifted;
  state_[3] = RotateLeft(state_[3], 45);
  return result;
}

void SamplerConfig::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0)
    Fail("sampler: temperature must be finite and >= 0 (0 = greedy), got ", temperature);
  if (top_k < 0) Fail("sampler: top_k must be >= 0 (0 = off), got ", top_k);
  if (!(top_p > 0 && top_p <= 1)) Fail("sampler: top_p must be in (0, 1] (1 = off), got ", top_p);
  if (!(min_p >= 0 && min_p <= 1)) Fail("sampler: min_p must be in [0, 1] (0 = off), got ", min_p);
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0)
    Fail("sampler: repetition_penalty must be finite and > 0 (1 = off), got ", repetition_penalty);
  if (!(presence_penalty >= -2 && presence_penalty <= 2))
    Fail("sampler: presence_penalty must be in [-2, 2] (0 = off), got ", presence_penalty);
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2))
    Fail("sampler: frequency_penalty must be in [-2, 2] (0 = off), got ", frequency_penalty);
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) Fail("sampler: logit_bias token id must be >= 0, got ", id);
    if (!(bias >= -100 && bias <= 100))
      Fail("sampler: logit_bias of token ", id, " must be in [-100, 100], got ", bias);
  }
}

Sampler::Sampler(const SamplerConfig& config) : config_(config), rng_(config.seed) {
  config_.Validate();
}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int32_t> previous_tokens) {
  const bool repetition = config_.repetition_penalty != 1.0f;
  const bool presence = config_.presence_penalty != 0.0f;
  const bool frequency = config_.frequency_penalty != 0.0f;
  if (!repetition && !presence && !frequency) return;
  if (counts_.size() < logits.size()) {
    counts_.assign(logits.size(), 0);
    seen_.reserve(logits.size());
  }
  // Count first, so that a bad id is reported before any logit changes.
  for (const int32_t id : previous_tokens) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) {
      for (const int32_t seen : seen_) counts_[static_cast<size_t>(seen)] = 0;
      seen_.clear();
      Fail("sampler: previous token id ", id, " is outside the vocabulary [0, ", logits.size(),
           ")");
    }
    if (counts_[static_cast<size_t>(id)]++ == 0) seen_.push_back(id);
  }
  for (const int32_t id : seen_) {
    float& logit = logits[static_cast<size_t>(id)];
    int32_t& count = counts_[static_cast<size_t>(id)];
    if (repetition)
      logit = logit > 0 ? logit / config_.repetition_penalty : logit * config_.repetition_penalty;
    logit -= static_cast<float>(count) * config_.frequency_penalty;
    logit -= config_.presence_penalty;
    count = 0;  // leave counts_ all zero for the next call
  }
  seen_.clear();
}

void Sampler::ApplyTopP(double total_weight) {
  // Sort only as much of the head as the nucleus needs: the top m by nth_element, then sort
  // those, widening m until their mass reaches top_p. Typical nuclei are a few dozen tokens out of
  // a vocabulary of 10^5, so this is linear time in practice.
  const double target = static_cast<double>(config_.top_p) * total_weight;
  const size_t n = candidates_.size();
  size_t m = std::min<size_t>(n, 64);
  size_t sorted = 0;
  double cumulative = 0;
  for (;;) {
    if (m < n) {
      std::nth_element(candidates_.begin() + static_cast<ptrdiff_t>(sorted),
                       candidates_.begin() + static_cast<ptrdiff_t>(m), candidates_.end(),
                       MoreLikely<Candidate, Candidate>);
    }
    std::sort(candidates_.begin() + static_cast<ptrdiff_t>(sorted),
              candidates_.begin() + static_cast<ptrdiff_t>(m), MoreLikely<Candidate, Candidate>);
    for (size_t i = sorted; i < m; ++i) {
      cumulative += candidates_[i].weight;
      if (cumulative >= target) {
        candidates_.resize(i + 1);
        return;
      }
    }
    // Rounding can leave the sum a hair below top_p * total even with every token counted.
    if (m == n) return;
    sorted = m;
    m = std::min(n, m * 4);
  }
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> previous_tokens) {
  if (logits.empty()) Fail("sampler: empty logits");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    Fail("sampler: vocabulary of ", logits.size(), " tokens exceeds int32 ids");
  for (const auto& [id, bias] : config_.logit_bias) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size())
      Fail("sampler: logit_bias token id ", id, " is outside the vocabulary [0, ", logits.size(),
           ")");
  }
  for (const auto& [id, bias] : config_.logit_bias) logits[static_cast<size_t>(id)] += bias;
  ApplyPenalties(logits, previous_tokens);

  // One pass: reject NaN and +inf (a broken model, not something to sample from) and find the
  // argmax, ties to the lowest id because only a strictly larger logit replaces it.
  size_t best = logits.size();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    if (std::isnan(logit) || logit == std::numeric_limits<float>::infinity())
      Fail("sampler: logit of token ", i, " is ", logit);
    if (logit == -std::numeric_limits<float>::infinity()) continue;
    if (best == logits.size() || logit > logits[best]) best = i;
  }
  if (best == logits.size()) Fail("sampler: every logit is -inf, no token can be sampled");
  if (config_.greedy()) return static_cast<int32_t>(best);

  if (candidates_.capacity() < logits.size()) candidates_.reserve(logits.size());
  candidates_.clear();
  const double inv_temperature = 1.0 / static_cast<double>(config_.temperature);
  const double max_scaled = static_cast<double>(logits[best]) * inv_temperature;
  // min-p: p_i / p_max = exp(s_i - s_max) >= min_p  <=>  s_i >= s_max + log(min_p).
  const double min_scaled = config_.min_p > 0
                                ? max_scaled + std::log(static_cast<double>(config_.min_p))
                                : -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == -std::numeric_limits<float>::infinity()) continue;
    const double scaled = static_cast<double>(logits[i]) * inv_temperature;
    if (scaled >= min_scaled)
      candidates_.push_back({scaled, std::exp(scaled - max_scaled), static_cast<int32_t>(i)});
  }

  const auto more_likely = MoreLikely<Candidate, Candidate>;
  const bool top_k = config_.top_k > 0 && static_cast<size_t>(config_.top_k) < candidates_.size();
  const bool top_p = config_.top_p < 1.0f;
  if (top_k) {
    const auto kth = candidates_.begin() + config_.top_k;
    std::nth_element(candidates_.begin(), kth, candidates_.end(), more_likely);
    candidates_.resize(static_cast<size_t>(config_.top_k));
    std::sort(candidates_.begin(), candidates_.end(), more_likely);
  }
  if (top_p) {
    double kept = 0;
    for (const Candidate& c : candidates_) kept += c.weight;
    ApplyTopP(kept);
  }
  // Draw in id order whatever the filters did, so that the token for a given random number
  // depends only on the distribution (a reference implementation can reproduce every draw).
  if (top_k || top_p) {
    std::sort(candidates_.begin(), candidates_.end(),
              [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  }
  double total = 0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double target = rng_.NextDouble() * total;
  double cumulative = 0;
  for (const Candidate& c : candidates_) {
    cumulative += c.weight;
    if (target < cumulative) return c.id;
  }
  return candidates_.back().id;  // target within rounding of the total
}

}  // namespace whale
