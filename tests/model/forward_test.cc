// Self-consistency of the forward pass: the two attention forms, prefill vs decode, batching,
// FP8 in place, MTP, and bad input. Agreement with the independent PyTorch reference is in
// reference_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "kernels/simd.h"
#include "model/model.h"
#include "model/weights.h"
#include "tiny_models.h"
#include "util/error.h"

namespace whale {
namespace {

using testing::TinyModelDir;

// Largest |a - b| relative to the largest |b|: logits are compared against their own scale.
float RelativeError(std::span<const float> a, std::span<const float> b) {
  float diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / std::max(scale, 1e-30f);
}

std::vector<int32_t> Tokens(int n, int salt = 0) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 97 + 13 + salt * 31) % 512;
  return t;
}

std::vector<float> AllLogits(Model& model, std::span<const int32_t> tokens) {
  KvCache cache = model.NewCache(64);
  std::vector<float> logits(tokens.size() * model.config().vocab_size);
  SequenceChunk chunk{&cache, tokens, true};
  model.Forward({&chunk, 1}, logits);
  return logits;
}

struct Case {
  const char* preset;
  StorageType storage;
};
class ForwardTest : public ::testing::TestWithParam<Case> {};

std::string CaseName(const ::testing::TestParamInfo<Case>& param) {
  const char* storage_names[] = {"f32", "bf16", "fp8"};
  std::string name =
      std::string(param.param.preset) + "_" + storage_names[static_cast<int>(param.param.storage)];
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// F32 sums over at most a few hundred terms per output: the two forms differ only in summation
// order, a few F32 ulps of the logit scale; 1e-5 leaves a margin of about 100x.
constexpr float kOrderTolerance = 1e-5f;
// One token through BF16 weights on CPUs with AVX512_BF16 rounds x to 16 significant bits
// (2^-16 relative per product where F32 keeps 24; kernels/matmul.h), so a BF16 model's
// one-token forwards differ from its prefill by more: 1.1e-5 on tiny-v3 (measured). 1e-4 leaves
// about 10x, far below a wrong kernel's errors (1e-2 and up).
float OrderTolerance(StorageType storage) {
  return storage == StorageType::kBF16 && Bf16PairsActive() ? 1e-4f : kOrderTolerance;
}

TEST_P(ForwardTest, AbsorbedEqualsNaive) {
  const Weights w = Weights::Load(TinyModelDir(GetParam().preset, GetParam().storage));
  ThreadPool pool(2);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  const auto tokens = Tokens(19);
  const auto absorbed = AllLogits(model, tokens);
  model.set_attention_form(AttentionForm::kNaive);
  const auto naive = AllLogits(model, tokens);
  EXPECT_LT(RelativeError(absorbed, naive), kOrderTolerance);
}

TEST_P(ForwardTest, PrefillEqualsPrefixThenOneByOneDecode) {
  const Weights w = Weights::Load(TinyModelDir(GetParam().preset, GetParam().storage));
  ThreadPool pool(2);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  const int64_t vocab = w.config().vocab_size;
  const auto tokens = Tokens(17);
  const auto full = AllLogits(model, tokens);
  for (int k : {1, 5, 16}) {
    KvCache cache = model.NewCache(64);
    std::vector<float> logits(k * vocab);
    SequenceChunk prefix{&cache, std::span(tokens).first(k), true};
    model.Forward({&prefix, 1}, logits);
    EXPECT_LT(RelativeError(logits, std::span(full).first(k * vocab)),
              OrderTolerance(GetParam().storage));
    std::vector<float> step(vocab);
    for (size_t i = k; i < tokens.size(); ++i) {
      SequenceChunk one{&cache, std::span(tokens).subspan(i, 1), false};
      model.Forward({&one, 1}, step);
      EXPECT_LT(RelativeError(step, std::span(full).subspan(i * vocab, vocab)),
                OrderTolerance(GetParam().storage))
          << "prefix " << k << " position " << i;
    }
  }
}

TEST_P(ForwardTest, BatchOfTwoEqualsEachAlone) {
  const Weights w = Weights::Load(TinyModelDir(GetParam().preset, GetParam().storage));
  ThreadPool pool(2);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  const int64_t vocab = w.config().vocab_size;
  const auto a = Tokens(11, 1);
  const auto b = Tokens(6, 2);
  const auto alone_a = AllLogits(model, a);
  const auto alone_b = AllLogits(model, b);
  // Different lengths and positions in one forward: b continues after a 3-token prefix.
  KvCache cache_a = model.NewCache(64), cache_b = model.NewCache(64);
  std::vector<float> prefix(3 * vocab);
  SequenceChunk head{&cache_b, std::span(b).first(3), true};
  model.Forward({&head, 1}, prefix);
  SequenceChunk chunks[] = {{&cache_a, a, true}, {&cache_b, std::span(b).subspan(3), true}};
  std::vector<float> logits(Model::LogitRows(chunks) * vocab);
  model.Forward(chunks, logits);
  EXPECT_LT(RelativeError(std::span(logits).first(a.size() * vocab), alone_a),
            OrderTolerance(GetParam().storage));
  EXPECT_LT(RelativeError(std::span(logits).subspan(a.size() * vocab),
                          std::span(alone_b).subspan(3 * vocab)),
            OrderTolerance(GetParam().storage));
}

// A decode step of several sequences at different positions (one token each, the absorbed
// decode path with heads split or not across threads) equals each sequence's own decode; a
// 30-token prefill (MoE experts split by rows: 30 x top-k slots exceed kExpertParallelSlots)
// equals the same tokens decoded one by one (experts one per task).
TEST_P(ForwardTest, BatchedDecodeStepAndLongPrefillMatchOneByOne) {
  const Weights w = Weights::Load(TinyModelDir(GetParam().preset, GetParam().storage));
  ASSERT_GT(30 * w.config().num_experts_per_tok, kExpertParallelSlots);
  const int64_t vocab = w.config().vocab_size;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
    constexpr int kSequences = 5;
    std::vector<std::vector<int32_t>> tokens;
    std::vector<std::vector<float>> alone;
    for (int s = 0; s < kSequences; ++s) {
      tokens.push_back(Tokens(4 + 3 * s, s));
      alone.push_back(AllLogits(model, tokens.back()));
    }
    // Every sequence but its last token, then one step with each sequence's last token.
    std::vector<KvCache> caches;
    for (int s = 0; s < kSequences; ++s) {
      caches.push_back(model.NewCache(64));
      std::vector<float> ignored(vocab);
      SequenceChunk head{&caches[s], std::span(tokens[s]).first(tokens[s].size() - 1), false};
      model.Forward({&head, 1}, ignored);
    }
    std::vector<SequenceChunk> step;
    for (int s = 0; s < kSequences; ++s)
      step.push_back({&caches[s], std::span(tokens[s]).last(1), false});
    std::vector<float> logits(kSequences * vocab);
    model.Forward(step, logits);
    for (int s = 0; s < kSequences; ++s)
      EXPECT_LT(RelativeError(std::span(logits).subspan(s * vocab, vocab),
                              std::span(alone[s]).last(vocab)),
                OrderTolerance(GetParam().storage))
          << "sequence " << s << ", " << threads << " threads";

    const auto long_tokens = Tokens(30, 7);
    const auto prefill = AllLogits(model, long_tokens);
    KvCache cache = model.NewCache(64);
    std::vector<float> one(vocab);
    for (size_t i = 0; i < long_tokens.size(); ++i) {
      SequenceChunk chunk{&cache, std::span(long_tokens).subspan(i, 1), false};
      model.Forward({&chunk, 1}, one);
      EXPECT_LT(RelativeError(one, std::span(prefill).subspan(i * vocab, vocab)),
                OrderTolerance(GetParam().storage))
          << "position " << i << ", " << threads << " threads";
    }
  }
}

TEST_P(ForwardTest, LastTokenLogitsMatchAllLogits) {
  const Weights w = Weights::Load(TinyModelDir(GetParam().preset, GetParam().storage));
  ThreadPool pool(1);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  const int64_t vocab = w.config().vocab_size;
  const auto tokens = Tokens(9);
  const auto full = AllLogits(model, tokens);
  KvCache cache = model.NewCache(64);
  std::vector<float> last(vocab);
  SequenceChunk chunk{&cache, tokens, false};
  model.Forward({&chunk, 1}, last);
  EXPECT_EQ(cache.length(), 9);
  EXPECT_LT(RelativeError(last, std::span(full).subspan(8 * vocab)),
            OrderTolerance(GetParam().storage));
}

INSTANTIATE_TEST_SUITE_P(Presets, ForwardTest,
                         ::testing::Values(Case{"tiny-v3", StorageType::kF32},
                                           Case{"tiny-v3", StorageType::kBF16},
                                           Case{"tiny-v3", StorageType::kFP8},
                                           Case{"tiny-v2", StorageType::kF32}),
                         CaseName);
// routed_experts_read counts each expert once per MoE layer and call, however many tokens of
// the batch chose it: one token reads top-k per layer, and two sequences with the same token at
// the same position choose the same experts, so they read no more.
TEST(Forward, CountsTheRoutedExpertsItReads) {
  const Weights w = Weights::Load(TinyModelDir("tiny-v3", StorageType::kF32));
  const ModelConfig& c = w.config();
  int64_t moe_layers = 0;
  for (const BlockWeights& block : w.layers) moe_layers += block.is_moe ? 1 : 0;
  ASSERT_GT(moe_layers, 0);
  ThreadPool pool(2);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  std::vector<float> logits(2 * c.vocab_size);
  const int32_t token = 42;
  KvCache a = model.NewCache(64), b = model.NewCache(64);
  SequenceChunk one{&a, {&token, 1}, false};
  int64_t before = model.routed_experts_read();
  model.Forward({&one, 1}, std::span(logits).first(c.vocab_size));
  EXPECT_EQ(model.routed_experts_read() - before, moe_layers * c.num_experts_per_tok);
  a.Clear();
  SequenceChunk same[] = {{&a, {&token, 1}, false}, {&b, {&token, 1}, false}};
  before = model.routed_experts_read();
  model.Forward(same, logits);
  EXPECT_EQ(model.routed_experts_read() - before, moe_layers * c.num_experts_per_tok);
  // Many different tokens read more experts, but never more than a layer has.
  a.Clear();
  const auto tokens = Tokens(30);
  SequenceChunk many{&a, tokens, false};
  before = model.routed_experts_read();
  model.Forward({&many, 1}, std::span(logits).first(c.vocab_size));
  const int64_t read = model.routed_experts_read() - before;
  EXPECT_GT(read, moe_layers * c.num_experts_per_tok);
  EXPECT_LE(read, moe_layers * c.n_routed_experts);
}

TEST(Forward, MtpDraftsWithItsOwnCacheIncrementally) {
  const Weights w = Weights::Load(TinyModelDir("tiny-v3", StorageType::kF32));
  ASSERT_TRUE(w.mtp.has_value());
  ThreadPool pool(2);
  Model model(w, pool, {.max_batch_tokens = 32, .max_context = 64});
  const int64_t vocab = w.config().vocab_size, d = w.config().hidden_size;
  const auto tokens = Tokens(12);
  KvCache cache = model.NewCache(64);
  std::vector<float> logits(tokens.size() * vocab), hidden(tokens.size() * d);
  SequenceChunk main{&cache, tokens, true};
  model.Forward({&main, 1}, logits, hidden);
  // All drafts at once: position i takes h_i and t_{i+1}.
  const size_t n = tokens.size() - 1;
  KvCache mtp_all = model.NewMtpCache(64);
  std::vector<float> drafts(n * vocab);
  SequenceChunk all{&mtp_all, std::span(tokens).subspan(1), true};
  model.ForwardMtp({&all, 1}, std::span(hidden).first(n * d), drafts);
  for (float v : drafts) ASSERT_TRUE(std::isfinite(v));
  // The same drafts one position at a time against the MTP cache.
  KvCache mtp_step = model.NewMtpCache(64);
  std::vector<float> one(vocab);
  for (size_t i = 0; i < n; ++i) {
    SequenceChunk step{&mtp_step, std::span(tokens).subspan(i + 1, 1), false};
    model.ForwardMtp({&step, 1}, std::span(hidden).subspan(i * d, d), one);
    EXPECT_LT(RelativeError(one, std::span(drafts).subspan(i * vocab, vocab)), kOrderTolerance);
  }
  // Drafts are not the main model's logits for the same position.
  EXPECT_GT(RelativeError(std::span(drafts).first(vocab), std::span(logits).subspan(vocab, vocab)),
            1e-2f);
}

template <typename F>
void ExpectError(F&& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected an error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Forward, BadInputIsAClearErrorAndChangesNothing) {
  const Weights w = Weights::Load(TinyModelDir("tiny-v3", StorageType::kF32));
  ThreadPool pool(1);
  Model model(w, pool, {.max_batch_tokens = 8, .max_context = 16});
  const int64_t vocab = w.config().vocab_size;
  KvCache cache = model.NewCache(16);
  std::vector<float> logits(vocab);
  const std::vector<int32_t> bad = {1, 512};
  SequenceChunk chunk{&cache, bad, false};
  ExpectError([&] { model.Forward({&chunk, 1}, logits); }, "token id 512 is outside");
  const std::vector<int32_t> negative = {-3};
  chunk.tokens = negative;
  ExpectError([&] { model.Forward({&chunk, 1}, logits); }, "token id -3");
  EXPECT_EQ(cache.length(), 0);
  const auto many = Tokens(9);
  chunk.tokens = many;
  ExpectError([&] { model.Forward({&chunk, 1}, logits); }, "exceeds max_batch_tokens 8");
  const auto eight = Tokens(8);
  chunk.tokens = eight;
  model.Forward({&chunk, 1}, logits);
  model.Forward({&chunk, 1}, logits);
  EXPECT_EQ(cache.length(), 16);
  chunk.tokens = std::span(eight).first(1);
  ExpectError([&] { model.Forward({&chunk, 1}, logits); }, "context overflow");
  EXPECT_EQ(cache.length(), 16);
  ExpectError([&] { model.NewCache(17); }, "exceeds this model instance's max_context");
  KvCache shared = model.NewCache(16);
  const std::vector<int32_t> one = {5};
  SequenceChunk twice[] = {{&shared, one, false}, {&shared, one, false}};
  std::vector<float> two_rows(2 * vocab);
  ExpectError([&] { model.Forward(twice, two_rows); }, "uses a KV cache that another chunk");
  EXPECT_EQ(shared.length(), 0);
}

}  // namespace
}  // namespace whale
