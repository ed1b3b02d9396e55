// Generator: the generation loop for one sequence: chunked prefill, then sample / stop / stream
// one token at a time. The CLI and (later) the server's SSE stream share it through the
// per-token callback.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"

namespace whale {

struct GenerationOptions {
  int64_t max_tokens = 128;          // tokens generated at most
  std::vector<int32_t> stop_tokens;  // generation ends after emitting one of these
  SamplerConfig sampling;
};

enum class FinishReason { kStopToken, kMaxTokens, kContextFull, kCallback };
const char* FinishReasonName(FinishReason reason);

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated, the stop token included when one ended it
  FinishReason finish = FinishReason::kMaxTokens;
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;  // from the first sampled token to the last
  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

class Generator {
 public:
  // `context`: positions of the sequence's KV cache (prompt + generated).
  Generator(Model& model, int64_t context);

  // Prefills `prompt` (nothing prepended) and generates. `on_token` is called with each new
  // token as soon as it is sampled; returning false stops generation.
  GenerationResult Generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const std::function<bool(int32_t token)>& on_token = {});

  // Logits of every prompt position, [prompt.size(), vocab] (the cache is reset first).
  std::vector<float> PromptLogits(std::span<const int32_t> prompt);

 private:
  // Runs `tokens` through the model in chunks of max_batch_tokens; writes the last token's
  // logits into logits_ (or every row into all_logits when given).
  void Prefill(std::span<const int32_t> tokens, std::vector<float>* all_logits);

  Model& model_;
  KvCache cache_;
  std::vector<float> logits_;  // [vocab]
};

}  // namespace whale
