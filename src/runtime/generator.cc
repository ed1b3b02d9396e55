#include "runtime/generator.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace whale {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStopToken:
      return "stop";
    case FinishReason::kMaxTokens:
      return "length";
    case FinishReason::kContextFull:
      return "context";
    case FinishReason::kCallback:
      return "cancelled";
  }
  return "?";
}

double GenerationResult::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0;
}

double GenerationResult::decode_tokens_per_second() const {
  // The first token comes out of the prefill; the decode rate counts the forwards after it.
  const double steps = static_cast<double>(tokens.size()) - 1;
  return decode_seconds > 0 && steps > 0 ? steps / decode_seconds : 0;
}

Generator::Generator(Model& model, int64_t context)
    : model_(model), cache_(model.NewCache(context)), logits_(model.config().vocab_size) {}

void Generator::Prefill(std::span<const int32_t> tokens, std::vector<float>* all_logits) {
  const int64_t vocab = model_.config().vocab_size;
  const int64_t chunk_size = model_.options().max_batch_tokens;
  for (size_t begin = 0; begin < tokens.size(); begin += chunk_size) {
    const size_t len = std::min<size_t>(chunk_size, tokens.size() - begin);
    SequenceChunk chunk{&cache_, tokens.subspan(begin, len), all_logits != nullptr};
    if (all_logits) {
      model_.Forward({&chunk, 1},
                     std::span<float>(all_logits->data() + begin * vocab, len * vocab));
    } else {
      model_.Forward({&chunk, 1}, logits_);
    }
  }
}

std::vector<float> Generator::PromptLogits(std::span<const int32_t> prompt) {
  if (prompt.empty()) Fail("the prompt is empty");
  cache_.Clear();
  std::vector<float> all(prompt.size() * model_.config().vocab_size);
  Prefill(prompt, &all);
  return all;
}

GenerationResult Generator::Generate(std::span<const int32_t> prompt,
                                     const GenerationOptions& options,
                                     const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) Fail("the prompt is empty: give at least one token");
  if (options.max_tokens < 0) Fail("max tokens must be >= 0, got ", options.max_tokens);
  cache_.Clear();
  cache_.CheckRoom(static_cast<int64_t>(prompt.size()));
  Sampler sampler(options.sampling);
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.tokens.reserve(options.max_tokens);
  // Penalties look at the prompt and the generated tokens alike.
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  history.reserve(prompt.size() + options.max_tokens);

  const auto t0 = Clock::now();
  Prefill(prompt, nullptr);
  const auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  if (options.max_tokens == 0) return result;

  for (;;) {
    const int32_t token = sampler.Sample(logits_, history);
    result.tokens.push_back(token);
    history.push_back(token);
    if (on_token && !on_token(token)) {
      result.finish = FinishReason::kCallback;
      break;
    }
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
        options.stop_tokens.end()) {
      result.finish = FinishReason::kStopToken;
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= options.max_tokens) {
      result.finish = FinishReason::kMaxTokens;
      break;
    }
    if (cache_.length() >= cache_.capacity()) {
      result.finish = FinishReason::kContextFull;
      break;
    }
    SequenceChunk chunk{&cache_, {&result.tokens.back(), 1}, false};
    model_.Forward({&chunk, 1}, logits_);
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace whale
