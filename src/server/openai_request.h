// Parsing and validation of OpenAI request bodies (spec openai-api.md sections 1 and 7.1) into
// one ApiRequest. Every known field with a wrong type or range, malformed JSON, and unsupported
// features throw ApiError (400) naming the field; unknown fields are accepted and ignored, as the
// spec requires.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/sampler.h"

namespace whale {

struct RequestLimits {
  int max_n = 1;           // --parallel
  int64_t vocab_size = 0;  // token-id prompts must be inside it
  size_t max_messages = 4096;
  size_t max_tools = 128;
  size_t max_stop = 16;
  int max_depth = 64;  // JSON nesting
};

struct ApiRequest {
  bool chat = true;
  std::string model;
  // Chat: messages normalized for the template (developer -> system, text parts joined with
  // "\n", reasoning fields kept), tools (null or the array), template variables.
  nlohmann::ordered_json messages;
  nlohmann::ordered_json tools = nullptr;
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  // "none", "auto", "required" (a call of one of the tools is forced) or "function" (a call of
  // tool_choice_name is forced).
  std::string tool_choice = "none";
  std::string tool_choice_name;
  std::vector<std::string> tool_names;  // of `tools`, in order
  bool parallel_tool_calls = true;
  // Completions: a text prompt, or token ids.
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;
  bool echo = false;

  bool stream = false;
  bool include_usage = false;
  int n = 1;
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens
  std::vector<std::string> stop;
  SamplerConfig sampling;
  bool logprobs = false;
  int top_logprobs = 0;
  bool raw_reasoning = false;  // keep <think> tags in content (separate_reasoning: false)
};

// Throw ApiError.
ApiRequest ParseChatRequest(const std::string& body, const RequestLimits& limits);
ApiRequest ParseCompletionRequest(const std::string& body, const RequestLimits& limits);

}  // namespace whale
