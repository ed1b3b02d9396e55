// ChatOutputParser: splits a reasoning model's generated text, as it streams, into the OpenAI
// channels: reasoning_content (inside <think>...</think>), content, and tool_calls parsed from
// DeepSeek's native call syntax (spec openai-api.md sections 5.2, 6.1, 6.3):
//
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```
//   <｜tool▁call▁end｜>[\n<｜tool▁call▁begin｜>...]<｜tool▁calls▁end｜>
//
// It works on decoded text, so a tag is found whether it is one token or several; any tail of the
// text that could be the start of a tag (or of a stop string, or of the closing fence of the
// arguments) is held back until the next piece decides. Stop strings are matched on the content
// channel only (the spec's recommended default): the text from the match on is dropped and
// stopped() turns true. The tags themselves never reach a channel, except in raw mode, where all
// text goes to content unparsed (stop strings still apply).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace whale {

// DeepSeek V3/R1 tool-call markers (spec 6.1), shared by the parser and the forced-call grammar.
namespace tool_syntax {
inline constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kSep = "<｜tool▁sep｜>";
inline constexpr std::string_view kFenceOpen = "```json\n";
inline constexpr std::string_view kFenceClose = "\n```";
inline constexpr std::string_view kThinkClose = "</think>";
}  // namespace tool_syntax

// One piece of a tool call: the first piece of a call carries its id and name, later ones only
// argument text. The concatenated `arguments` of an index are the call's JSON arguments.
struct ToolCallDelta {
  int index = 0;
  std::string id;    // "call_" + 24 alphanumerics on the first piece, else empty
  std::string name;  // on the first piece, else empty
  std::string arguments;
};

struct ChatDelta {
  std::string reasoning;
  std::string content;
  std::vector<ToolCallDelta> tool_calls;

  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
  // Appends `other`, merging argument pieces of the same call.
  void Append(const ChatDelta& other);
};

struct ChatOutputOptions {
  // The prompt ended inside an open <think> (DeepSeek-R1's template emits "<think>\n" after
  // <｜Assistant｜>): text is reasoning until </think>. Otherwise a leading <think> opens it.
  bool start_in_reasoning = true;
  bool parse_tool_calls = true;   // off: the call syntax is left in content
  bool raw = false;               // keep everything, tags included, in content
  std::vector<std::string> stop;  // stop strings (empty strings are ignored)
  uint64_t id_seed = 0;           // seeds tool-call ids (0: from std::random_device)
};

class ChatOutputParser {
 public:
  explicit ChatOutputParser(ChatOutputOptions options);

  // Consumes the next decoded text (whole UTF-8 characters) and returns what became certain.
  ChatDelta Feed(std::string_view text);
  // End of generation: releases held-back text (an unfinished tag is text after all).
  ChatDelta Finish();

  bool stopped() const { return state_ == State::kStopped; }
  // The next token is reasoning (for usage.completion_tokens_details.reasoning_tokens).
  bool in_reasoning() const { return state_ == State::kReasoning || state_ == State::kMaybeThink; }
  int tool_call_count() const { return calls_; }
  const std::string& stop_matched() const { return stop_matched_; }

 private:
  enum class State {
    kMaybeThink,  // nothing yet: a leading <think> opens reasoning, anything else is content
    kReasoning,
    kContent,
    kCalls,     // between calls
    kCallType,  // "function" before <｜tool▁sep｜>
    kCallName,  // the name, up to the newline
    kFence,     // the opening ```json fence
    kArgs,
    kDone,  // after <｜tool▁calls▁end｜>: nothing more is emitted
    kStopped,
  };

  // Runs the state machine over pending_ as far as it can decide.
  void Process(ChatDelta& out, bool final);
  void EmitArgs(ChatDelta& out, std::string_view text);
  std::string NewCallId();

  ChatOutputOptions options_;
  State state_;
  std::string pending_;    // text not yet routed
  std::string call_type_;  // of the current call
  std::string call_name_;
  int calls_ = 0;  // calls started
  std::string stop_matched_;
  uint64_t rng_;
};

}  // namespace whale
