// Sampler: against a slow reference of the documented pipeline (draw for draw), against the
// distributions it must produce (statistically, with bounds from the binomial error), and the
// exact effect of each penalty.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "util/error.h"

// Counts heap allocations made by the current thread while `g_count_allocations` is set, to check
// that Sample() does not allocate after its first call. Replacing operator new affects the whole
// test binary, so it only counts; it allocates exactly as the default does (malloc / free).
namespace {
thread_local bool g_count_allocations = false;
thread_local long g_allocations = 0;
}  // namespace

// GCC inlines the library's allocations and then sees free() on memory from operator new; with
// new and delete replaced together that pairing is exactly right.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  if (g_count_allocations) ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them), so that every plain
// allocation of the binary pairs malloc with free.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (g_count_allocations) ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace whale {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The documented pipeline, written plainly: full sorts, a std::map of counts, no scratch reuse.
// It draws from the same RNG and walks the final distribution in id order, as Sample() does, so
// the two agree on every draw; summation order may differ, which could only matter when a random
// number falls within ~1e-16 of a cumulative boundary (never, for these seeds).
class ReferenceSampler {
 public:
  explicit ReferenceSampler(const SamplerConfig& config) : config_(config), rng_(config.seed) {}

  int32_t Sample(std::vector<float> logits, const std::vector<int32_t>& previous) {
    std::map<int32_t, int> counts;
    for (int32_t id : previous) counts[id]++;
    for (const auto& [id, count] : counts) {
      float& logit = logits[static_cast<size_t>(id)];
      if (logit > 0) {
        logit /= config_.repetition_penalty;
      } else {
        logit *= config_.repetition_penalty;
      }
      logit -= static_cast<float>(count) * config_.frequency_penalty;
      logit -= config_.presence_penalty;
    }
    const size_t n = logits.size();
    if (config_.temperature == 0) {
      return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    std::vector<double> scaled(n);
    for (size_t i = 0; i < n; ++i)
      scaled[i] = static_cast<double>(logits[i]) * (1.0 / static_cast<double>(config_.temperature));
    double max_scaled = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < n; ++i)
      if (logits[i] != -kInf) max_scaled = std::max(max_scaled, scaled[i]);
    std::vector<double> weight(n, 0.0);
    std::vector<int32_t> kept;  // min-p survivors
    for (size_t i = 0; i < n; ++i) {
      if (logits[i] == -kInf) continue;
      weight[i] = std::exp(scaled[i] - max_scaled);
      if (weight[i] >= config_.min_p) kept.push_back(static_cast<int32_t>(i));  // p / p_max
    }
    std::sort(kept.begin(), kept.end(), [&](int32_t a, int32_t b) {
      return scaled[a] > scaled[b] || (scaled[a] == scaled[b] && a < b);
    });
    if (config_.top_k > 0 && static_cast<size_t>(config_.top_k) < kept.size())
      kept.resize(static_cast<size_t>(config_.top_k));
    if (config_.top_p < 1) {
      double total = 0;
      for (int32_t id : kept) total += weight[id];
      double cumulative = 0;
      for (size_t i = 0; i < kept.size(); ++i) {
        cumulative += weight[kept[i]];
        if (cumulative >= config_.top_p * total) {
          kept.resize(i + 1);
          break;
        }
      }
    }
    std::sort(kept.begin(), kept.end());
    double total = 0;
    for (int32_t id : kept) total += weight[id];
    const double target = rng_.NextDouble() * total;
    double cumulative = 0;
    for (int32_t id : kept) {
      cumulative += weight[id];
      if (target < cumulative) return id;
    }
    return kept.back();
  }

 private:
  SamplerConfig config_;
  Xoshiro256 rng_;
};

std::vector<float> RandomLogits(size_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(n);
  for (float& x : logits) x = normal(gen);
  return logits;
}

// Draws `n_draws` tokens (no previous tokens) and returns the count of each id.
std::vector<int> Histogram(const SamplerConfig& config, const std::vector<float>& logits,
                           int n_draws) {
  Sampler sampler(config);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n_draws; ++i) {
    std::vector<float> row = logits;
    counts[static_cast<size_t>(sampler.Sample(row, {}))]++;
  }
  return counts;
}

// Each count must be within 5 standard deviations of its binomial mean N p (plus 1 for
// discreteness). With fixed seeds the test is deterministic; for an unbiased sampler a count
// leaves this band with probability < 6e-7, so a failure means a biased sampler, not bad luck.
// Tokens with p = 0 must not appear at all.
void ExpectDistribution(const std::vector<int>& counts, const std::vector<double>& p, int n_draws) {
  ASSERT_EQ(counts.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the support";
      continue;
    }
    const double mean = n_draws * p[i];
    const double sigma = std::sqrt(n_draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma + 1) << "token " << i << ", p = " << p[i];
  }
}

// Logits whose softmax at temperature 1 is exactly proportional to `p`.
std::vector<float> LogitsFor(const std::vector<double>& p) {
  std::vector<float> logits;
  for (double q : p) logits.push_back(static_cast<float>(std::log(q)));
  return logits;
}

std::vector<double> Normalized(std::vector<double> w) {
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& x : w) x /= total;
  return w;
}

TEST(SamplerConfig, ValidateNamesTheFieldAndValue) {
  const auto expect = [](SamplerConfig c, const std::string& message) {
    try {
      c.Validate();
      ADD_FAILURE() << "expected: " << message;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), message);
    }
    EXPECT_THROW(Sampler{c}, Error);
  };
  SamplerConfig c;
  c.Validate();  // defaults are valid
  c.temperature = -0.5f;
  expect(c, "sampler: temperature must be finite and >= 0 (0 = greedy), got -0.5");
  c = {};
  c.temperature = kInf;
  expect(c, "sampler: temperature must be finite and >= 0 (0 = greedy), got inf");
  c = {};
  c.top_k = -1;
  expect(c, "sampler: top_k must be >= 0 (0 = off), got -1");
  c = {};
  c.top_p = 0;
  expect(c, "sampler: top_p must be in (0, 1] (1 = off), got 0");
  c.top_p = 1.5f;
  expect(c, "sampler: top_p must be in (0, 1] (1 = off), got 1.5");
  c.top_p = std::nanf("");
  expect(c, "sampler: top_p must be in (0, 1] (1 = off), got nan");
  c = {};
  c.min_p = -0.25f;
  expect(c, "sampler: min_p must be in [0, 1] (0 = off), got -0.25");
  c = {};
  c.repetition_penalty = 0;
  expect(c, "sampler: repetition_penalty must be finite and > 0 (1 = off), got 0");
  c = {};
  c.presence_penalty = 2.5f;
  expect(c, "sampler: presence_penalty must be in [-2, 2] (0 = off), got 2.5");
  c = {};
  c.frequency_penalty = -3;
  expect(c, "sampler: frequency_penalty must be in [-2, 2] (0 = off), got -3");
}

TEST(Sampler, GreedyIsTheArgmaxWithTiesToTheLowestId) {
  SamplerConfig config;
  config.temperature = 0;
  Sampler sampler(config);
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  EXPECT_EQ(sampler.Sample(logits, {}), 1);
  std::vector<float> masked = {-kInf, -kInf, -5.0f, -kInf};
  EXPECT_EQ(sampler.Sample(masked, {}), 2);
  for (size_t n : {31u, 32u, 33u, 127u, 129u}) {
    std::vector<float> row = RandomLogits(n, static_cast<uint32_t>(n));
    const auto want = std::max_element(row.begin(), row.end()) - row.begin();
    EXPECT_EQ(sampler.Sample(row, {}), want) << n;
  }
}

TEST(Sampler, LogitBiasIsAddedBeforeEverythingElse) {
  SamplerConfig config;
  config.temperature = 0;
  config.logit_bias = {{4, 2.6f}, {1, -100.0f}};
  Sampler sampler(config);
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 2.9f, 0.5f};
  // 0.5 + 2.6 = 3.1 beats 2.9 once token 1 (3.0) is pushed down to -97.
  EXPECT_EQ(sampler.Sample(logits, {}), 4);
  EXPECT_FLOAT_EQ(logits[4], 3.1f);
  EXPECT_FLOAT_EQ(logits[1], -97.0f);
  // At temperature 1, a -100 bias leaves a token with probability ~e^-100: never drawn.
  SamplerConfig hot;
  hot.temperature = 1;
  hot.seed = 3;
  hot.logit_bias = {{0, -100.0f}};
  Sampler sampler_hot(hot);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> row = {5.0f, 0.0f, 0.0f};
    EXPECT_NE(sampler_hot.Sample(row, {}), 0);
  }
  SamplerConfig bad = config;
  bad.logit_bias = {{7, 1.0f}};
  Sampler out_of_vocab(bad);
  std::vector<float> row = {1.0f, 2.0f};
  EXPECT_THROW(out_of_vocab.Sample(row, {}), Error);
  bad.logit_bias = {{0, 101.0f}};
  EXPECT_THROW(bad.Validate(), Error);
  bad.logit_bias = {{-1, 1.0f}};
  EXPECT_THROW(bad.Validate(), Error);
}

TEST(Sampler, TopKOfOneIsGreedyAtAnyTemperature) {
  for (float temperature : {0.3f, 1.0f, 5.0f}) {
    SamplerConfig config;
    config.temperature = temperature;
    config.top_k = 1;
    config.seed = 7;
    Sampler sampler(config);
    for (uint32_t trial = 0; trial < 50; ++trial) {
      const size_t n = 31 + trial % 99;
      std::vector<float> row = RandomLogits(n, trial);
      row[trial % n] = row[(trial + 3) % n];  // some ties
      const auto want = std::max_element(row.begin(), row.end()) - row.begin();
      EXPECT_EQ(sampler.Sample(row, {}), want) << "n=" << n << " trial=" << trial;
    }
  }
}

TEST(Sampler, SameSeedSameTokensDifferentSeedsDiffer) {
  SamplerConfig config;
  config.temperature = 1.0f;
  const std::vector<float> logits(1000, 0.0f);  // uniform: every draw is a fresh random token
  const auto draw = [&](uint64_t seed) {
    config.seed = seed;
    Sampler sampler(config);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> row = logits;
      tokens.push_back(sampler.Sample(row, tokens));
    }
    return tokens;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_EQ(draw(0), draw(0));
  // Two seeds agreeing on 64 uniform draws from 1000 tokens: probability 1000^-64.
  EXPECT_NE(draw(42), draw(43));
  EXPECT_NE(draw(0), draw(1));
}

TEST(Sampler, MatchesTheReferenceDrawForDraw) {
  struct Case {
    float temperature;
    int32_t top_k;
    float top_p, min_p, repetition, presence, frequency;
  };
  const Case cases[] = {
      {1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f},    {0.7f, 40, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f},
      {1.0f, 0, 0.9f, 0.0f, 1.0f, 0.0f, 0.0f},    {1.3f, 0, 1.0f, 0.05f, 1.0f, 0.0f, 0.0f},
      {0.8f, 50, 0.95f, 0.02f, 1.1f, 0.5f, 0.2f}, {2.0f, 5, 0.5f, 0.0f, 1.3f, -0.4f, 0.7f},
      {0.6f, 0, 0.3f, 0.0f, 0.9f, 0.0f, -0.3f},   {1.0f, 1000, 0.99f, 0.001f, 1.0f, 2.0f, 2.0f},
  };
  for (size_t n : {31u, 32u, 33u, 127u, 129u, 5000u}) {
    for (size_t k = 0; k < std::size(cases); ++k) {
      const Case& c = cases[k];
      SamplerConfig config;
      config.temperature = c.temperature;
      config.top_k = c.top_k;
      config.top_p = c.top_p;
      config.min_p = c.min_p;
      config.repetition_penalty = c.repetition;
      config.presence_penalty = c.presence;
      config.frequency_penalty = c.frequency;
      config.seed = 1000 * n + k;
      Sampler sampler(config);
      ReferenceSampler reference(config);
      std::vector<int32_t> previous;
      for (int step = 0; step < 60; ++step) {
        std::vector<float> logits = RandomLogits(n, static_cast<uint32_t>(step * 7919 + k));
        if (step % 3 == 0) logits[static_cast<size_t>(step) % n] = -kInf;  // a masked token
        const int32_t want = reference.Sample(logits, previous);
        const int32_t got = sampler.Sample(logits, previous);
        ASSERT_EQ(got, want) << "n=" << n << " case=" << k << " step=" << step;
        previous.push_back(got);
      }
    }
  }
}

TEST(Sampler, TemperatureOneSamplesTheSoftmax) {
  const std::vector<double> p = {0.5, 0.25, 0.125, 0.0625, 0.0625};
  SamplerConfig config;
  config.seed = 3;
  const int n_draws = 40000;
  ExpectDistribution(Histogram(config, LogitsFor(p), n_draws), p, n_draws);
}

TEST(Sampler, TemperatureScalesTheLogits) {
  // softmax(log p / T) is proportional to p^(1/T).
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  for (float temperature : {0.5f, 2.0f}) {
    SamplerConfig config;
    config.temperature = temperature;
    config.seed = 11;
    std::vector<double> want;
    for (double q : p) want.push_back(std::pow(q, 1.0 / temperature));
    const int n_draws = 40000;
    ExpectDistribution(Histogram(config, LogitsFor(p), n_draws), Normalized(want), n_draws);
  }
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  const std::vector<double> p = {0.1, 0.4, 0.05, 0.3, 0.15};
  SamplerConfig config;
  config.top_k = 3;
  config.seed = 5;
  const int n_draws = 30000;
  ExpectDistribution(Histogram(config, LogitsFor(p), n_draws), Normalized({0, 0.4, 0, 0.3, 0.15}),
                     n_draws);
  // Equal logits at the cut: the lower ids stay.
  const std::vector<float> flat(6, 1.0f);
  ExpectDistribution(Histogram(config, flat, 3000), {1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0, 0}, 3000);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Sorted: 0.5, 0.3, 0.15, 0.05. top_p 0.75: 0.5 < 0.75 <= 0.8, so {0.5, 0.3} remain.
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3};
  SamplerConfig config;
  config.top_p = 0.75f;
  config.seed = 9;
  const int n_draws = 30000;
  ExpectDistribution(Histogram(config, LogitsFor(p), n_draws), Normalized({0, 0.5, 0, 0.3}),
                     n_draws);
  // A nucleus far wider than the first partial sort (64): 1200 equal logits, top_p 0.5 keeps ids
  // 0..599 (ties to the lower id).
  config.top_p = 0.5f;
  const int n_flat = 1200;
  const int n_draws_flat = 1000;
  const std::vector<int> counts = Histogram(config, std::vector<float>(n_flat, 0.0f), n_draws_flat);
  int inside = 0;
  for (int i = 0; i < n_flat; ++i) {
    if (i >= n_flat / 2) {
      EXPECT_EQ(counts[i], 0) << i;
    }
    inside += counts[i];
  }
  EXPECT_EQ(inside, n_draws_flat);
  // The first half of the nucleus is drawn about half the time (bound: 5 sigma of Bin(1000, .5)).
  EXPECT_NEAR(std::accumulate(counts.begin(), counts.begin() + n_flat / 4, 0), n_draws_flat / 2,
              5 * std::sqrt(n_draws_flat * 0.25) + 1);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMostLikely) {
  // min_p 0.25 of p_max 0.5: tokens with p >= 0.125 stay.
  const std::vector<double> p = {0.05, 0.5, 0.15, 0.3};
  SamplerConfig config;
  config.min_p = 0.25f;
  config.seed = 13;
  const int n_draws = 30000;
  ExpectDistribution(Histogram(config, LogitsFor(p), n_draws), Normalized({0, 0.5, 0.15, 0.3}),
                     n_draws);
  // min_p 1 keeps only the maximum.
  config.min_p = 1.0f;
  ExpectDistribution(Histogram(config, LogitsFor(p), 1000), {0, 1, 0, 0}, 1000);
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
  SamplerConfig config;
  config.seed = 17;
  std::vector<float> logits = {0.0f, -kInf, 0.0f, -kInf};
  ExpectDistribution(Histogram(config, logits, 4000), {0.5, 0, 0.5, 0}, 4000);
}

TEST(Sampler, PenaltiesChangeExactlyTheRepeatedTokensLogits) {
  SamplerConfig config;
  config.temperature = 0;
  config.repetition_penalty = 2.0f;
  config.presence_penalty = 0.5f;
  config.frequency_penalty = 0.25f;
  Sampler sampler(config);
  std::vector<float> logits = {4.0f, -3.0f, 1.0f, 0.0f, 6.0f, -1.0f};
  // Token 0 three times, token 1 twice, token 3 once; 2, 4 and 5 never.
  const std::vector<int32_t> previous = {0, 1, 0, 3, 0, 1};
  sampler.Sample(logits, previous);
  EXPECT_EQ(logits[0], 4.0f / 2 - 3 * 0.25f - 0.5f);   // positive: divided
  EXPECT_EQ(logits[1], -3.0f * 2 - 2 * 0.25f - 0.5f);  // negative: multiplied
  EXPECT_EQ(logits[2], 1.0f);
  EXPECT_EQ(logits[3], 0.0f * 2 - 0.25f - 0.5f);  // zero stays zero under repetition
  EXPECT_EQ(logits[4], 6.0f);
  EXPECT_EQ(logits[5], -1.0f);
  // The counts do not leak into the next call.
  std::vector<float> again = {4.0f, -3.0f, 1.0f, 0.0f, 6.0f, -1.0f};
  sampler.Sample(again, std::vector<int32_t>{2});
  EXPECT_EQ(again[0], 4.0f);
  EXPECT_EQ(again[2], 1.0f / 2 - 0.25f - 0.5f);
}

TEST(Sampler, EachPenaltyAlone) {
  const std::vector<int32_t> previous = {1, 1, 2};
  const auto apply = [&](SamplerConfig config) {
    config.temperature = 0;
    std::vector<float> logits = {1.0f, 2.0f, -2.0f};
    Sampler(config).Sample(logits, previous);
    return logits;
  };
  SamplerConfig c;
  c.repetition_penalty = 1.5f;
  EXPECT_EQ(apply(c), (std::vector<float>{1.0f, 2.0f / 1.5f, -2.0f * 1.5f}));
  c = {};
  c.presence_penalty = 1.0f;
  EXPECT_EQ(apply(c), (std::vector<float>{1.0f, 1.0f, -3.0f}));
  c = {};
  c.frequency_penalty = 1.0f;
  EXPECT_EQ(apply(c), (std::vector<float>{1.0f, 0.0f, -3.0f}));
  c = {};
  c.frequency_penalty = -0.5f;  // negative penalties encourage repeats
  EXPECT_EQ(apply(c), (std::vector<float>{1.0f, 3.0f, -1.5f}));
  c = {};  // all neutral: the logits are left alone
  EXPECT_EQ(apply(c), (std::vector<float>{1.0f, 2.0f, -2.0f}));
}

TEST(Sampler, PenaltiesSteerGreedyAwayFromRepeats) {
  SamplerConfig config;
  config.temperature = 0;
  config.frequency_penalty = 0.6f;
  Sampler sampler(config);
  std::vector<float> logits = {1.0f, 2.0f, 1.5f};
  EXPECT_EQ(sampler.Sample(logits, std::vector<int32_t>{1}), 2);  // 2 - 0.6 < 1.5
  logits = {1.0f, 2.0f, 1.5f};
  EXPECT_EQ(sampler.Sample(logits, {}), 1);
}

TEST(Sampler, BadInputsAreErrors) {
  SamplerConfig config;
  config.repetition_penalty = 1.2f;
  Sampler sampler(config);
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  try {
    sampler.Sample(logits, std::vector<int32_t>{0, 3});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sampler: previous token id 3 is outside the vocabulary [0, 3)");
  }
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 2.0f, 3.0f})) << "logits changed before the error";
  EXPECT_THROW(sampler.Sample(logits, std::vector<int32_t>{-1}), Error);
  // After the errors the counts are clean: only token 2 is penalized.
  sampler.Sample(logits, std::vector<int32_t>{2});
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 2.0f, 3.0f / 1.2f}));

  std::vector<float> with_nan = {0.0f, std::nanf(""), 1.0f};
  try {
    sampler.Sample(with_nan, {});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sampler: logit of token 1 is nan");
  }
  std::vector<float> with_inf = {0.0f, 1.0f, kInf};
  EXPECT_THROW(sampler.Sample(with_inf, {}), Error);
  std::vector<float> all_masked = {-kInf, -kInf};
  try {
    sampler.Sample(all_masked, {});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sampler: every logit is -inf, no token can be sampled");
  }
  std::vector<float> empty;
  EXPECT_THROW(sampler.Sample(empty, {}), Error);
}

TEST(Sampler, NoAllocationAfterTheFirstCall) {
  SamplerConfig config;
  config.temperature = 0.9f;
  config.top_k = 500;
  config.top_p = 0.9f;
  config.min_p = 0.001f;
  config.repetition_penalty = 1.1f;
  config.presence_penalty = 0.3f;
  config.frequency_penalty = 0.2f;
  Sampler sampler(config);
  const size_t vocab = 4099;
  std::vector<float> logits = RandomLogits(vocab, 1);
  std::vector<int32_t> previous;
  previous.reserve(200);
  sampler.Sample(logits, previous);  // sizes the scratch
  // Refresh the logits in place and grow `previous` within its reserve: only Sample() could
  // allocate in this loop.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  logits.assign(vocab, 0.0f);
  g_allocations = 0;
  g_count_allocations = true;
  for (int step = 0; step < 100; ++step) {
    for (float& x : logits) x = normal(gen);
    previous.push_back(sampler.Sample(logits, previous));
  }
  g_count_allocations = false;
  EXPECT_EQ(g_allocations, 0);
  // And the counter does count.
  g_count_allocations = true;
  std::vector<int>* probe = new std::vector<int>(3);
  g_count_allocations = false;
  delete probe;
  EXPECT_GE(g_allocations, 1);
}

TEST(Xoshiro256, UniformDoublesInTheUnitInterval) {
  Xoshiro256 rng(2024);
  const int n = 100000;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.NextDouble();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of n uniforms: 0.5 +- 5 sigma, sigma = sqrt(1/12 / n).
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  Xoshiro256 a(0), b(0), c(1);
  for (int i = 0; i < 10; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_NE(x, c.Next());
  }
}

}  // namespace
}  // namespace whale
