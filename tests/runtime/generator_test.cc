// The generation loop: reproducible with a seed, greedy equals the argmax of the model's own
// logits, and every way of ending (stop token, max tokens, callback, full context) works.
#include "runtime/generator.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../model/tiny_models.h"
#include "util/error.h"

namespace whale {
namespace {

struct Fixture {
  Weights weights = Weights::Load(testing::TinyModelDir("tiny-v3", StorageType::kFP8));
  ThreadPool pool{2};
  Model model{weights, pool, {.max_batch_tokens = 8, .max_context = 64}};
};

const std::vector<int32_t> kPrompt = {0, 17, 42, 300, 7, 11, 99, 100, 101, 5, 6};

TEST(Generator, SameSeedSameTokensDifferentSeedDifferentTokens) {
  Fixture f;
  Generator generator(f.model, 64);
  GenerationOptions options;
  options.max_tokens = 20;
  options.sampling.temperature = 1.0f;
  options.sampling.seed = 3;
  const auto a = generator.Generate(kPrompt, options).tokens;
  const auto b = generator.Generate(kPrompt, options).tokens;
  EXPECT_EQ(a, b);
  options.sampling.seed = 4;
  EXPECT_NE(generator.Generate(kPrompt, options).tokens, a);
}

TEST(Generator, GreedyFollowsTheArgmaxOfPromptLogits) {
  Fixture f;
  Generator generator(f.model, 64);
  GenerationOptions options;
  options.max_tokens = 6;
  options.sampling.temperature = 0.0f;
  const auto generated = generator.Generate(kPrompt, options).tokens;
  ASSERT_EQ(generated.size(), 6u);
  // Each generated token is the argmax of the logits of the sequence before it; the prompt is
  // longer than max_batch_tokens, so this also covers chunked prefill.
  std::vector<int32_t> sequence = kPrompt;
  const int64_t vocab = f.weights.config().vocab_size;
  for (int32_t token : generated) {
    const auto logits = generator.PromptLogits(sequence);
    const auto last = logits.end() - vocab;
    EXPECT_EQ(token, std::max_element(last, logits.end()) - last);
    sequence.push_back(token);
  }
}

TEST(Generator, EndsOnStopTokenMaxTokensCallbackAndFullContext) {
  Fixture f;
  Generator generator(f.model, 16);
  GenerationOptions options;
  options.max_tokens = 5;
  options.sampling.temperature = 0.0f;
  const auto free_run = generator.Generate(kPrompt, options);
  EXPECT_EQ(free_run.finish, FinishReason::kMaxTokens);
  ASSERT_EQ(free_run.tokens.size(), 5u);

  options.stop_tokens = {free_run.tokens[2]};
  const auto stopped = generator.Generate(kPrompt, options);
  EXPECT_EQ(stopped.finish, FinishReason::kStopToken);
  EXPECT_EQ(stopped.tokens,
            std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + 3));

  options.stop_tokens.clear();
  std::vector<int32_t> streamed;
  const auto cancelled = generator.Generate(kPrompt, options, [&](int32_t token) {
    streamed.push_back(token);
    return streamed.size() < 2;
  });
  EXPECT_EQ(cancelled.finish, FinishReason::kCallback);
  EXPECT_EQ(streamed, cancelled.tokens);
  EXPECT_EQ(cancelled.tokens.size(), 2u);

  // 11 prompt tokens in a 16-token context: room for 5 forwards, so 6 tokens come out.
  options.max_tokens = 100;
  const auto full = generator.Generate(kPrompt, options);
  EXPECT_EQ(full.finish, FinishReason::kContextFull);
  EXPECT_EQ(full.tokens.size(), 6u);
}

TEST(Generator, BadRequestsAreClearErrors) {
  Fixture f;
  Generator generator(f.model, 8);
  GenerationOptions options;
  EXPECT_THROW(generator.Generate({}, options), Error);
  EXPECT_THROW(generator.Generate(kPrompt, options), Error);  // 11 tokens, context 8
  options.sampling.top_p = 1.5f;
  const std::vector<int32_t> short_prompt = {1, 2};
  EXPECT_THROW(generator.Generate(short_prompt, options), Error);
}

}  // namespace
}  // namespace whale
