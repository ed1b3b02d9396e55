// Exchange: the state of one generation request in flight, shared by the scheduler's thread that
// fills it and the HTTP thread that writes it out. Internal to src/server: Server::Impl's
// generation code (exchange.cc) drives it; server.h stays free of it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/chat_output.h"
#include "runtime/scheduler.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/server.h"
#include "tokenizer/tokenizer.h"

namespace whale {

// Ordered: keys come out in insertion order, which Server::Impl::ChunkHead relies on.
using Json = nlohmann::ordered_json;

// One request in flight: the per-choice decoders and parsers the scheduler's callbacks feed, and
// what they produce (SSE events for a stream, the response object otherwise).
struct Exchange {
  struct Choice {
    StreamDecoder decoder;
    ChatOutputParser parser;
    ChatDelta total;
    int64_t reasoning_tokens = 0;
    Json logprobs = Json::array();  // chat: content-token items
    Json legacy_tokens = Json::array(), legacy_logprobs = Json::array(), legacy_top = Json::array(),
         legacy_offsets = Json::array();  // completions
    std::string stop_reason;
  };

  Server::Impl* server = nullptr;
  ApiRequest request;
  std::string id;
  int64_t created = 0;
  std::string echo_text;   // completions with echo
  std::string chunk_head;  // 'data: {"id":...,"model":...,"choices":[' of every chat chunk
  std::vector<Choice> choices;
  std::shared_ptr<RequestHandle> handle;
  double deadline = 0;

  std::mutex mutex;
  std::condition_variable cv;
  std::string staged;              // frames made but not handed to the writer yet
  std::deque<std::string> events;  // SSE frames not yet written
  bool done = false;
  bool timed_out = false;
  bool client_gone = false;
  Json response;                  // non-streaming result
  std::optional<ApiError> error;  // generation failed

  // Queues a frame; the writer wakes at the end of the scheduler's step (Scheduler's on_step),
  // when the request finishes, or at its keep-alive timeout, so a step with many streams wakes
  // each writer once instead of once per token and frame.
  // Frames are staged without a lock by the thread that makes them (the scheduler's, or the
  // handler's before Submit) and handed over under the lock once per step.
  void Push(std::string frame) { staged += frame; }
  void HandOver() {  // mutex held
    if (!staged.empty()) events.push_back(std::move(staged));
    staged.clear();
  }
  void Wake() {
    if (staged.empty()) return;
    {
      std::lock_guard lock(mutex);
      HandOver();
    }
    cv.notify_all();
  }
};

}  // namespace whale
