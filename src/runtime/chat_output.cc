#include "runtime/chat_output.h"

#include <random>
#include <utility>

namespace whale {
namespace {

using namespace tool_syntax;
constexpr std::string_view kThinkOpen = "<think>";
// The closing fence and the end of the call, as one marker, so the fence never reaches the
// arguments; a call without the fence ends at kCallEnd alone.
constexpr std::string_view kFenceCallEnd = "\n```<｜tool▁call▁end｜>";

struct Found {
  size_t pos = std::string_view::npos;
  size_t which = 0;
  bool found() const { return pos != std::string_view::npos; }
};

// The earliest occurrence of any marker; on a tie the longest marker wins.
Found FindFirst(std::string_view text, const std::vector<std::string_view>& markers) {
  Found best;
  for (size_t i = 0; i < markers.size(); ++i) {
    if (markers[i].empty()) continue;
    const size_t pos = text.find(markers[i]);
    if (pos == std::string_view::npos) continue;
    if (!best.found() || pos < best.pos ||
        (pos == best.pos && markers[i].size() > markers[best.which].size())) {
      best.pos = pos;
      best.which = i;
    }
  }
  return best;
}

// The longest tail of `text` that is a proper prefix of some marker: it must wait for more text.
size_t Holdback(std::string_view text, const std::vector<std::string_view>& markers) {
  size_t keep = 0;
  for (std::string_view marker : markers) {
    const size_t most = std::min(text.size(), marker.empty() ? 0 : marker.size() - 1);
    for (size_t k = most; k > keep; --k) {
      if (text.substr(text.size() - k) == marker.substr(0, k)) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

void ChatDelta::Append(const ChatDelta& other) {
  reasoning += other.reasoning;
  content += other.content;
  for (const ToolCallDelta& call : other.tool_calls) {
    if (!tool_calls.empty() && tool_calls.back().index == call.index && call.id.empty()) {
      tool_calls.back().arguments += call.arguments;
    } else {
      tool_calls.push_back(call);
    }
  }
}

ChatOutputParser::ChatOutputParser(ChatOutputOptions options)
    : options_(std::move(options)),
      state_(options_.raw                  ? State::kContent
             : options_.start_in_reasoning ? State::kReasoning
                                           : State::kMaybeThink),
      rng_(options_.id_seed != 0
               ? options_.id_seed
               : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

ChatDelta ChatOutputParser::Feed(std::string_view text) {
  ChatDelta out;
  pending_ += text;
  Process(out, false);
  return out;
}

ChatDelta ChatOutputParser::Finish() {
  ChatDelta out;
  Process(out, true);
  pending_.clear();
  return out;
}

std::string ChatOutputParser::NewCallId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) {
    // splitmix64: ids only need to be unique, not secret.
    uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    id += kAlphabet[z % 62];
  }
  return id;
}

void ChatOutputParser::EmitArgs(ChatDelta& out, std::string_view text) {
  if (text.empty()) return;
  if (!out.tool_calls.empty() && out.tool_calls.back().index == calls_ - 1) {
    out.tool_calls.back().arguments += text;
  } else {
    out.tool_calls.push_back({calls_ - 1, "", "", std::string(text)});
  }
}

void ChatOutputParser::Process(ChatDelta& out, bool final) {
  // Routes pending_[0, n) to `channel` and drops it from pending_.
  auto take = [this](std::string& channel, size_t n) {
    channel.append(pending_, 0, n);
    pending_.erase(0, n);
  };
  auto drop = [this](size_t n) { pending_.erase(0, n); };
  for (;;) {
    switch (state_) {
      case State::kMaybeThink:
        if (pending_.empty()) return;
        if (StartsWith(pending_, kThinkOpen)) {
          drop(kThinkOpen.size());
          state_ = State::kReasoning;
          continue;
        }
        if (!final && StartsWith(kThinkOpen, pending_)) return;
        state_ = State::kContent;
        continue;
      case State::kReasoning: {
        const std::vector<std::string_view> markers = {kThinkClose};
        const Found f = FindFirst(pending_, markers);
        if (f.found()) {
          take(out.reasoning, f.pos);
          drop(kThinkClose.size());
          state_ = State::kContent;
          continue;
        }
        take(out.reasoning, pending_.size() - (final ? 0 : Holdback(pending_, markers)));
        return;
      }
      case State::kContent: {
        std::vector<std::string_view> markers(options_.stop.begin(), options_.stop.end());
        if (!options_.raw && options_.parse_tool_calls) markers.push_back(kCallsBegin);
        const Found f = FindFirst(pending_, markers);
        if (f.found()) {
          take(out.content, f.pos);
          if (f.which < options_.stop.size()) {
            stop_matched_ = options_.stop[f.which];
            pending_.clear();
            state_ = State::kStopped;
            return;
          }
          drop(kCallsBegin.size());
          state_ = State::kCalls;
          continue;
        }
        take(out.content, pending_.size() - (final ? 0 : Holdback(pending_, markers)));
        return;
      }
      case State::kCalls: {
        const std::vector<std::string_view> markers = {kCallBegin, kCallsEnd};
        const Found f = FindFirst(pending_, markers);
        if (f.found()) {
          drop(f.pos + markers[f.which].size());
          if (f.which == 0) {
            call_type_.clear();
            state_ = State::kCallType;
          } else {
            state_ = State::kDone;
          }
          continue;
        }
        // Whitespace between calls is not content.
        drop(pending_.size() - (final ? 0 : Holdback(pending_, markers)));
        return;
      }
      case State::kCallType: {
        const std::vector<std::string_view> markers = {kSep};
        const Found f = FindFirst(pending_, markers);
        if (f.found()) {
          take(call_type_, f.pos);
          drop(kSep.size());
          call_name_.clear();
          state_ = State::kCallName;
          continue;
        }
        take(call_type_, pending_.size() - (final ? 0 : Holdback(pending_, markers)));
        return;
      }
      case State::kCallName: {
        const std::vector<std::string_view> markers = {"\n", kCallEnd};
        const Found f = FindFirst(pending_, markers);
        if (f.found() || final) {
          take(call_name_, f.found() ? f.pos : pending_.size());
          out.tool_calls.push_back({calls_, NewCallId(), call_name_, ""});
          ++calls_;
          if (!f.found()) return;
          drop(markers[f.which].size());
          state_ = f.which == 0 ? State::kFence : State::kCalls;
          continue;
        }
        take(call_name_, pending_.size() - Holdback(pending_, markers));
        return;
      }
      case State::kFence:
        if (StartsWith(pending_, kFenceOpen)) {
          drop(kFenceOpen.size());
          state_ = State::kArgs;
          continue;
        }
        if (!final && StartsWith(kFenceOpen, pending_)) return;
        state_ = State::kArgs;  // arguments without a fence
        continue;
      case State::kArgs: {
        const std::vector<std::string_view> markers = {kFenceCallEnd, kCallEnd};
        const Found f = FindFirst(pending_, markers);
        if (f.found()) {
          EmitArgs(out, std::string_view(pending_).substr(0, f.pos));
          drop(f.pos + markers[f.which].size());
          state_ = State::kCalls;
          continue;
        }
        const size_t n = pending_.size() - (final ? 0 : Holdback(pending_, markers));
        EmitArgs(out, std::string_view(pending_).substr(0, n));
        drop(n);
        return;
      }
      case State::kDone:
      case State::kStopped:
        pending_.clear();
        return;
    }
  }
}

}  // namespace whale
