// Forced tool calls: whatever the logits, the constrained output is one call of an allowed tool
// whose arguments parse as a JSON object, within the token budget. Checked on random logits over
// many seeds and budgets (Allows / Mask / Accept directly), through the Scheduler on a tiny random
// model (greedy, sampled, n > 1), and Mask is checked against Allows token by token.
#include "runtime/token_constraint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../model/tiny_models.h"
#include "model/sampler.h"
#include "runtime/chat_output.h"
#include "runtime/scheduler.h"

namespace whale {
namespace {

const Tokenizer& ServeTokenizer() {
  static const Tokenizer tokenizer =
      Tokenizer::FromModelDir(std::string(WHALE_TEST_DATA) + "/serve");
  return tokenizer;
}

std::shared_ptr<const VocabBytes> Vocab() {
  static const auto vocab = std::make_shared<VocabBytes>(ServeTokenizer());
  return vocab;
}

const std::vector<std::string> kTools = {"get_weather", "get", "lookup-2"};

// Parses generated tokens as the server does; returns the calls.
std::vector<ToolCallDelta> Calls(const std::vector<int32_t>& tokens, bool start_in_reasoning,
                                 ChatDelta* all = nullptr) {
  ChatOutputOptions options;
  options.start_in_reasoning = start_in_reasoning;
  options.id_seed = 1;
  ChatOutputParser parser(options);
  ChatDelta total = parser.Feed(ServeTokenizer().Decode(tokens));
  total.Append(parser.Finish());
  if (all) *all = total;
  return total.tool_calls;
}

void ExpectOneValidCall(const std::vector<int32_t>& tokens, bool start_in_reasoning,
                        const std::vector<std::string>& names, const std::string& context) {
  ChatDelta all;
  const std::vector<ToolCallDelta> calls = Calls(tokens, start_in_reasoning, &all);
  ASSERT_EQ(calls.size(), 1u) << context << ": " << ServeTokenizer().Decode(tokens);
  EXPECT_TRUE(all.content.empty()) << context;
  EXPECT_TRUE(all.reasoning.empty()) << context;
  EXPECT_NE(std::find(names.begin(), names.end(), calls[0].name), names.end())
      << context << ": name '" << calls[0].name << "'";
  const auto args = nlohmann::json::parse(calls[0].arguments, nullptr, false);
  ASSERT_FALSE(args.is_discarded()) << context << ": arguments " << calls[0].arguments;
  EXPECT_TRUE(args.is_object()) << context << ": arguments " << calls[0].arguments;
}

TEST(VocabBytes, BytesAndBuckets) {
  const VocabBytes& vocab = *Vocab();
  const Tokenizer& t = ServeTokenizer();
  EXPECT_EQ(vocab.size(), t.vocab_size());
  int64_t bucketed = 0;
  for (int b = 0; b < 256; ++b) {
    for (int32_t id : vocab.starting_with(static_cast<uint8_t>(b))) {
      ASSERT_FALSE(vocab.special(id));
      ASSERT_EQ(static_cast<uint8_t>(vocab.bytes(id)[0]), b);
    }
    bucketed += static_cast<int64_t>(vocab.starting_with(static_cast<uint8_t>(b)).size());
    if (vocab.byte_token(static_cast<uint8_t>(b)) >= 0) {
      EXPECT_EQ(vocab.bytes(vocab.byte_token(static_cast<uint8_t>(b))),
                std::string(1, static_cast<char>(b)));
    }
  }
  int64_t ordinary = 0;
  for (int32_t id = 0; id < vocab.size(); ++id) {
    ordinary += !vocab.special(id) && !vocab.bytes(id).empty();
    const std::string_view b = vocab.bytes(id);
    const bool ascii = std::all_of(b.begin(), b.end(), [](char c) { return c > 0; });
    if (!vocab.special(id) && ascii) {  // a lone byte of a character decodes to U+FFFD
      EXPECT_EQ(vocab.bytes(id), t.Decode(std::span<const int32_t>(&id, 1))) << id;
    }
  }
  EXPECT_EQ(bucketed, ordinary);
  EXPECT_TRUE(vocab.special(*t.TokenId("<｜tool▁call▁end｜>")));
}

// Runs a constraint on random logits with a sampler, as the scheduler does.
std::vector<int32_t> RunOnRandomLogits(std::shared_ptr<const ToolCallGrammar> grammar,
                                       int64_t budget, SamplerConfig sampling, uint64_t seed,
                                       bool check_mask) {
  TokenConstraint constraint(grammar, budget);
  Sampler sampler(sampling);
  Xoshiro256 rng(seed);
  const int64_t vocab = 512;  // the model's rows are wider than the tokenizer's 416 ids
  std::vector<float> row(vocab), copy(vocab);
  std::vector<int32_t> tokens;
  while (!constraint.done()) {
    EXPECT_LT(static_cast<int64_t>(tokens.size()), budget) << "over budget";
    if (static_cast<int64_t>(tokens.size()) >= budget) break;
    // Scaled uniform noise: some tokens dominate, like a confident but random model.
    for (float& x : row) x = static_cast<float>((rng.NextDouble() - 0.5) * 16);
    copy = row;
    int32_t token = sampler.Sample(row, tokens);
    if (check_mask) {
      std::vector<float> masked = copy;
      constraint.Mask(masked);
      for (int32_t id = 0; id < vocab; ++id)
        EXPECT_EQ(std::isfinite(masked[id]), constraint.Allows(id)) << "token " << id;
    }
    if (!constraint.Allows(token)) {
      constraint.Mask(copy);
      token = sampler.Sample(copy, tokens);
    }
    EXPECT_TRUE(constraint.Allows(token));
    constraint.Accept(token);
    tokens.push_back(token);
  }
  return tokens;
}

TEST(TokenConstraint, RandomLogitsAlwaysGiveAValidCall) {
  for (const bool named : {false, true}) {
    for (const bool think : {false, true}) {
      const std::vector<std::string> names = named ? std::vector<std::string>{"lookup-2"} : kTools;
      auto grammar = ToolCallGrammar::Make(ServeTokenizer(), Vocab(), think, names, named);
      const int64_t min = grammar->MinTokens();
      for (uint64_t seed = 1; seed <= 60; ++seed) {
        const int64_t budget = min + static_cast<int64_t>(seed % 25);
        SamplerConfig sampling;
        sampling.temperature = seed % 3 == 0 ? 0.0f : 1.0f;
        sampling.seed = seed;
        const std::string context = "named " + std::to_string(named) + " think " +
                                    std::to_string(think) + " seed " + std::to_string(seed) +
                                    " budget " + std::to_string(budget);
        const std::vector<int32_t> tokens =
            RunOnRandomLogits(grammar, budget, sampling, seed, seed <= 3);
        EXPECT_LE(static_cast<int64_t>(tokens.size()), budget) << context;
        ExpectOneValidCall(tokens, think, names, context);
      }
    }
  }
}

TEST(TokenConstraint, TheMinimumBudgetGivesEmptyArguments) {
  auto grammar = ToolCallGrammar::Make(ServeTokenizer(), Vocab(), true, kTools, false);
  SamplerConfig greedy;
  greedy.temperature = 0;
  const std::vector<int32_t> tokens =
      RunOnRandomLogits(grammar, grammar->MinTokens(), greedy, 3, false);
  const std::vector<ToolCallDelta> calls = Calls(tokens, true);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get");  // the shortest name is the only one that fits
  // Multi-byte tokens may spell the name in fewer tokens than MinTokens counts, leaving room
  // for whitespace, but not for a member.
  EXPECT_EQ(nlohmann::json::parse(calls[0].arguments), nlohmann::json::object())
      << calls[0].arguments;
}

TEST(TokenConstraint, RefusesTooSmallBudgetsAndBadGrammars) {
  auto grammar = ToolCallGrammar::Make(ServeTokenizer(), Vocab(), false, kTools, false);
  EXPECT_THROW(TokenConstraint(grammar, grammar->MinTokens() - 1), Error);
  EXPECT_THROW(ToolCallGrammar::Make(ServeTokenizer(), Vocab(), false, {}, false), Error);
  EXPECT_THROW(ToolCallGrammar::Make(ServeTokenizer(), Vocab(), false, {"a", "b"}, true), Error);
}

TEST(TokenConstraint, ThroughTheSchedulerOnARandomModel) {
  Weights weights = Weights::Load(testing::TinyModelDir("tiny-v3", StorageType::kF32));
  ThreadPool pool(2);
  Model model(weights, pool, {.max_batch_tokens = 32, .max_context = 128});
  Scheduler scheduler(model, {.parallel = 4, .context = 128, .prefix_cache_entries = 2});
  auto grammar = ToolCallGrammar::Make(ServeTokenizer(), Vocab(), true, kTools, false);
  const std::vector<int32_t> prompt =
      ServeTokenizer().Encode("<｜User｜>weather?<｜Assistant｜><think>\n", false);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<std::string> labels;
  for (int i = 0; i < 8; ++i) {
    RequestOptions r;
    r.prompt = prompt;
    r.n = i % 2 == 0 ? 1 : 3;
    r.max_tokens = grammar->MinTokens() + 4 * i;
    r.sampling.temperature = i % 4 == 0 ? 0.0f : 1.0f;
    r.sampling.seed = static_cast<uint64_t>(100 + i);
    r.stop_tokens = {*ServeTokenizer().eos_id()};
    r.tool_call = grammar;
    handles.push_back(scheduler.Submit(std::move(r)));
    labels.push_back("request " + std::to_string(i));
  }
  for (size_t i = 0; i < handles.size(); ++i) {
    ASSERT_TRUE(handles[i]->WaitFor(120));
    const RequestResult& result = handles[i]->result();
    for (size_t c = 0; c < result.choices.size(); ++c) {
      const ChoiceResult& choice = result.choices[c];
      EXPECT_EQ(choice.stop, StopReason::kStopToken) << labels[i];
      EXPECT_LE(static_cast<int64_t>(choice.tokens.size()), grammar->MinTokens() + 4 * int(i));
      ExpectOneValidCall(choice.tokens, true, kTools, labels[i] + " choice " + std::to_string(c));
    }
  }
  RequestOptions small;
  small.prompt = prompt;
  small.max_tokens = grammar->MinTokens() - 1;
  small.tool_call = grammar;
  EXPECT_THROW(scheduler.Submit(std::move(small)), Error);
}

}  // namespace
}  // namespace whale

namespace whale {
namespace {

// The mask's cost on DeepSeek-V3's 129K-token vocabulary, the size it must be fast for: random
// logits make nearly every first draw invalid, so each step masks the whole vocabulary.
TEST(TokenConstraint, MaskCostOnTheDeepSeekVocabulary) {
  const Tokenizer tokenizer =
      Tokenizer::FromFile(std::string(WHALE_TEST_DATA) + "/tokenizer/deepseek-v3/tokenizer.json");
  auto start = std::chrono::steady_clock::now();
  auto vocab = std::make_shared<VocabBytes>(tokenizer);
  const double build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto grammar = ToolCallGrammar::Make(tokenizer, vocab, false, {"get_weather", "get_time"}, false);
  TokenConstraint constraint(grammar, 200);
  Xoshiro256 rng(5);
  std::vector<float> row(vocab->size());
  double mask_ms = 0;
  int masks = 0;
  std::vector<int32_t> tokens;
  while (!constraint.done()) {
    for (float& x : row) x = static_cast<float>(rng.NextDouble() * 8);
    start = std::chrono::steady_clock::now();
    constraint.Mask(row);
    mask_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ++masks;
    const auto best = std::max_element(row.begin(), row.end()) - row.begin();
    constraint.Accept(static_cast<int32_t>(best));
    tokens.push_back(static_cast<int32_t>(best));
  }
  std::cout << "VocabBytes for " << vocab->size() << " tokens: " << build_ms
            << " ms; Mask: " << mask_ms / masks << " ms per step over " << masks << " steps\n";
  ChatOutputOptions options;
  options.start_in_reasoning = false;
  ChatOutputParser parser(options);
  ChatDelta all = parser.Feed(tokenizer.Decode(tokens));
  all.Append(parser.Finish());
  ASSERT_EQ(all.tool_calls.size(), 1u) << tokenizer.Decode(tokens);
  EXPECT_TRUE(nlohmann::json::parse(all.tool_calls[0].arguments).is_object());
  // A loose bound (sanitizer and debug builds included) against an accidental quadratic path.
  EXPECT_LT(mask_ms / masks, 500.0);
}

}  // namespace
}  // namespace whale
