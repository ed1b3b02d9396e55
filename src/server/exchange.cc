// Server::Impl's generation code: one OpenAI request from the parsed body and its prompt tokens
// to the last SSE frame or the response object. Generate() checks the token budget and submits to
// the Scheduler; OnToken()/OnDone() run on the scheduler's thread and turn tokens into chunks
// (chat and legacy completions, logprobs, tool calls, usage); Pump() writes a stream out on the
// HTTP thread. Apart from server.cc (routes, auth, metrics) because this is the per-token path.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "server/client_socket.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace whale {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A finite logprob: OpenAI uses -9999 for "impossible"; JSON has no -Infinity.
double Finite(float x) {
  return std::isfinite(x) ? std::max<double>(x, -9999.0) : -9999.0;
}

}  // namespace

Json Server::Impl::ChunkBase(const Exchange& ex) const {
  return {{"id", ex.id},
          {"object", ex.request.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", ex.created},
          {"model", options.model_name}};
}

std::string Server::Impl::Frame(const Json& chunk) const {
  return "data: " + Dump(chunk) + "\n\n";
}

// The constant start of every chat chunk of an exchange, 'data:
// {"id":...,"model":...,"choices":[' (ordered_json keeps the key order), made once so a per-token
// chunk only dumps its choice.
std::string Server::Impl::ChunkHead(const Exchange& ex) const {
  std::string head = Frame(ChunkBase(ex));  // data: {...}\n\n
  head.resize(head.size() - 3);             // drop "}\n\n"
  return head + ",\"choices\":[";
}

std::string Server::Impl::ChatChunk(const Exchange& ex, int index, Json delta, const Json& logprobs,
                                    const Json& finish) const {
  Json choice = {{"index", index},
                 {"delta", std::move(delta)},
                 {"logprobs", nullptr},
                 {"finish_reason", finish}};
  if (!logprobs.is_null()) choice["logprobs"] = {{"content", logprobs}, {"refusal", nullptr}};
  return ex.chunk_head + Dump(choice) + "]}\n\n";
}

Json Server::Impl::ToolCallJson(const ToolCallDelta& call) {
  Json j = {{"index", call.index}};
  if (!call.id.empty()) {
    j["id"] = call.id;
    j["type"] = "function";
    j["function"] = {{"name", call.name}, {"arguments", call.arguments}};
  } else {
    j["function"] = {{"arguments", call.arguments}};
  }
  return j;
}

// Streams one delta: reasoning, content and tool calls as separate chunks, in that order.
void Server::Impl::StreamDelta(Exchange& ex, int index, const ChatDelta& d,
                               const Json& logprobs) const {
  if (!ex.request.stream) return;
  if (!ex.request.chat) {
    if (d.content.empty() && logprobs.is_null()) return;
    Json chunk = ChunkBase(ex);
    chunk["choices"] = Json::array({{{"index", index},
                                     {"text", d.content},
                                     {"logprobs", logprobs},
                                     {"finish_reason", nullptr}}});
    ex.Push(Frame(chunk));
    return;
  }
  bool logprobs_sent = logprobs.is_null();
  if (!d.reasoning.empty())
    ex.Push(ChatChunk(ex, index, {{"reasoning_content", d.reasoning}, {"content", nullptr}},
                      nullptr, nullptr));
  if (!d.content.empty() || !logprobs_sent) {
    ex.Push(ChatChunk(ex, index, {{"content", d.content}, {"reasoning_content", nullptr}},
                      logprobs_sent ? Json(nullptr) : logprobs, nullptr));
    logprobs_sent = true;
  }
  if (!d.tool_calls.empty()) {
    Json calls = Json::array();
    for (const ToolCallDelta& call : d.tool_calls) calls.push_back(ToolCallJson(call));
    ex.Push(ChatChunk(ex, index, {{"tool_calls", calls}}, nullptr, nullptr));
  }
}

ChatDelta Server::Impl::Filter(const Exchange& ex, ChatDelta d) const {
  if (!ex.request.parallel_tool_calls)
    std::erase_if(d.tool_calls, [](const ToolCallDelta& c) { return c.index > 0; });
  return d;
}

bool Server::Impl::OnToken(Exchange& ex, const TokenEvent& event) {
  Exchange::Choice& c = ex.choices[event.choice];
  const bool reasoning = !ex.request.raw_reasoning && c.parser.in_reasoning();
  if (reasoning) ++c.reasoning_tokens;
  const std::string text = c.decoder.Next(event.token);
  const ChatDelta d = Filter(ex, c.parser.Feed(text));
  c.total.Append(d);
  Json logprobs = nullptr;
  if (ex.request.logprobs && !reasoning) {
    const std::string token = tokenizer.Decode(std::span<const int32_t>(&event.token, 1));
    auto bytes = [&](int32_t id) {
      std::string b;
      if (tokenizer.has_byte_level_decoder())
        tokenizer.AppendTokenBytes(id, false, b);
      else
        b = tokenizer.Decode(std::span<const int32_t>(&id, 1));
      Json arr = Json::array();
      for (unsigned char ch : b) arr.push_back(ch);
      return arr;
    };
    if (ex.request.chat) {
      Json top = Json::array();
      for (const auto& [id, lp] : event.top) {
        if (static_cast<int>(top.size()) >= ex.request.top_logprobs) break;
        top.push_back({{"token", tokenizer.Decode(std::span<const int32_t>(&id, 1))},
                       {"logprob", Finite(lp)},
                       {"bytes", bytes(id)}});
      }
      Json item = {{"token", token},
                   {"logprob", Finite(event.logprob)},
                   {"bytes", bytes(event.token)},
                   {"top_logprobs", top}};
      c.logprobs.push_back(item);
      logprobs = Json::array({item});
    } else {
      Json top = Json::object();
      for (const auto& [id, lp] : event.top) {
        if (static_cast<int>(top.size()) >= ex.request.top_logprobs) break;
        top[tokenizer.Decode(std::span<const int32_t>(&id, 1))] = Finite(lp);
      }
      c.legacy_offsets.push_back(ex.echo_text.size() + c.total.content.size() - d.content.size());
      c.legacy_tokens.push_back(token);
      c.legacy_logprobs.push_back(Finite(event.logprob));
      c.legacy_top.push_back(top);
      logprobs = {{"tokens", {token}},
                  {"token_logprobs", {Finite(event.logprob)}},
                  {"top_logprobs", {top}},
                  {"text_offset", {c.legacy_offsets.back()}}};
    }
  }
  StreamDelta(ex, event.choice, d, logprobs);
  // A stop string ends the choice here; a client gone or a timeout cancels the whole request
  // through its handle (StopReason::kCancelled).
  return !c.parser.stopped();
}

void Server::Impl::OnDone(Exchange& ex, const RequestResult& result) {
  int64_t completion = 0, reasoning = 0;
  bool cancelled = false;
  Json choices = Json::array();
  for (size_t i = 0; i < ex.choices.size(); ++i) {
    Exchange::Choice& c = ex.choices[i];
    const ChoiceResult& r = result.choices[i];
    ChatDelta d = c.parser.Feed(c.decoder.Finish());
    d.Append(c.parser.Finish());
    d = Filter(ex, d);
    c.total.Append(d);
    StreamDelta(ex, static_cast<int>(i), d, nullptr);
    completion += static_cast<int64_t>(r.tokens.size());
    reasoning += c.reasoning_tokens;
    std::string finish = "stop";
    if (r.stop == StopReason::kLength) finish = "length";
    if (r.stop == StopReason::kCancelled || r.stop == StopReason::kError) cancelled = true;
    if (ex.request.chat && !c.total.tool_calls.empty() && finish == "stop") finish = "tool_calls";
    if (ex.request.stream) {
      if (ex.request.chat) {
        ex.Push(ChatChunk(ex, static_cast<int>(i), Json::object(), nullptr, finish));
      } else {
        Json chunk = ChunkBase(ex);
        chunk["choices"] = Json::array(
            {{{"index", i}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", finish}}});
        ex.Push(Frame(chunk));
      }
    } else if (ex.request.chat) {
      Json message = {{"role", "assistant"}};
      const bool only_calls = !c.total.tool_calls.empty() && c.total.content.empty();
      message["content"] = only_calls || (c.total.content.empty() && !c.total.reasoning.empty())
                               ? Json(nullptr)
                               : Json(c.total.content);
      if (!ex.request.raw_reasoning)
        message["reasoning_content"] =
            c.total.reasoning.empty() ? Json(nullptr) : Json(c.total.reasoning);
      if (!c.total.tool_calls.empty()) {
        Json calls = Json::array();
        for (const ToolCallDelta& call : c.total.tool_calls)
          calls.push_back({{"id", call.id},
                           {"type", "function"},
                           {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
        message["tool_calls"] = calls;
      }
      message["refusal"] = nullptr;
      Json logprobs = nullptr;
      if (ex.request.logprobs) logprobs = {{"content", c.logprobs}, {"refusal", nullptr}};
      choices.push_back(
          {{"index", i}, {"message", message}, {"logprobs", logprobs}, {"finish_reason", finish}});
    } else {
      Json logprobs = nullptr;
      if (ex.request.logprobs)
        logprobs = {{"tokens", c.legacy_tokens},
                    {"token_logprobs", c.legacy_logprobs},
                    {"top_logprobs", c.legacy_top},
                    {"text_offset", c.legacy_offsets}};
      choices.push_back({{"index", i},
                         {"text", ex.echo_text + c.total.content},
                         {"logprobs", logprobs},
                         {"finish_reason", finish}});
    }
  }
  const Json usage = {{"prompt_tokens", result.prompt_tokens},
                      {"completion_tokens", completion},
                      {"total_tokens", result.prompt_tokens + completion},
                      {"prompt_tokens_details", {{"cached_tokens", result.cached_tokens}}},
                      {"completion_tokens_details", {{"reasoning_tokens", reasoning}}},
                      {"prompt_cache_hit_tokens", result.cached_tokens},
                      {"prompt_cache_miss_tokens", result.prompt_tokens - result.cached_tokens}};
  std::lock_guard lock(ex.mutex);
  ex.HandOver();
  if (cancelled && (ex.timed_out || !result.error.empty() || stopping)) {
    ex.error = ex.timed_out
                   ? ApiError(408, "timeout_error", "request_timeout", std::nullopt,
                              "the request did not finish within " +
                                  std::to_string(options.request_timeout_seconds) + " seconds")
                   : Internal(result.error.empty() ? "the server is shutting down" : result.error);
  }
  if (ex.request.stream) {
    if (ex.error) ex.events.push_back("data: " + Dump(ex.error->Body()) + "\n\n");
    if (ex.request.include_usage && !cancelled) {
      Json chunk = ChunkBase(ex);
      chunk["choices"] = Json::array();
      chunk["usage"] = usage;
      ex.events.push_back(Frame(chunk));
    }
    ex.events.push_back("data: [DONE]\n\n");
  } else {
    ex.response = {{"id", ex.id},
                   {"object", ex.request.chat ? "chat.completion" : "text_completion"},
                   {"created", ex.created},
                   {"model", options.model_name},
                   {"choices", choices},
                   {"usage", usage}};
  }
  ex.done = true;
  ex.cv.notify_all();
}

// Validates the token budget, submits, and answers (streaming or not).
void Server::Impl::Generate(const httplib::Request& req, httplib::Response& res, ApiRequest request,
                            std::vector<int32_t> prompt, bool start_in_reasoning) {
  const int64_t context = scheduler.options().context;
  const int64_t p = static_cast<int64_t>(prompt.size());
  if (p == 0)
    throw ApiError::InvalidValue(request.chat ? "messages" : "prompt", "the prompt is empty");
  if (p >= context || (request.max_tokens && p + *request.max_tokens > context)) {
    std::string message =
        "This model's maximum context length is " + std::to_string(context) + " tokens. However, ";
    if (p >= context || !request.max_tokens)
      message += "your messages resulted in " + std::to_string(p) +
                 " tokens. Please reduce the length of the messages.";
    else
      message += "you requested " + std::to_string(p + *request.max_tokens) + " tokens (" +
                 std::to_string(p) + " in the messages, " + std::to_string(*request.max_tokens) +
                 " in the completion). Please reduce the length of the messages or completion.";
    ApiError e(400, "invalid_request_error", "context_length_exceeded",
               request.chat ? "messages" : "prompt", message);
    e.extra = {{"n_prompt_tokens", p}, {"n_ctx", context}};
    throw e;
  }
  auto ex = std::make_shared<Exchange>();
  ex->server = this;
  ex->id = (request.chat ? "chatcmpl-" : "cmpl-") + res.get_header_value("x-request-id");
  ex->created = static_cast<int64_t>(std::time(nullptr));
  ex->deadline = Now() + options.request_timeout_seconds;
  ex->request = std::move(request);
  ex->chunk_head = ChunkHead(*ex);
  const ApiRequest& r = ex->request;
  if (!r.chat && r.echo) ex->echo_text = r.prompt_is_tokens ? tokenizer.Decode(prompt) : r.prompt;
  ChatOutputOptions parse;
  parse.start_in_reasoning = start_in_reasoning;
  parse.raw = r.raw_reasoning;
  parse.parse_tool_calls = r.chat && r.tool_choice != "none";
  parse.stop = r.stop;
  for (int i = 0; i < r.n; ++i)
    ex->choices.push_back({StreamDecoder(tokenizer), ChatOutputParser(parse)});
  RequestOptions ro;
  ro.prompt = std::move(prompt);
  ro.n = r.n;
  ro.max_tokens = r.max_tokens.value_or(context - p);
  ro.stop_tokens = stop_tokens;
  ro.sampling = r.sampling;
  ro.top_logprobs = r.logprobs ? std::max(r.top_logprobs, 1) : -1;
  if (r.chat && (r.tool_choice == "required" || r.tool_choice == "function"))
    ro.tool_call = ForcedToolCall(r, start_in_reasoning, ro.max_tokens);
  if (r.stream && r.chat) {
    for (int i = 0; i < r.n; ++i)
      ex->Push(ChatChunk(*ex, i, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
  }
  {
    std::lock_guard lock(ex->mutex);
    ex->HandOver();
  }
  try {
    Exchange* raw = ex.get();
    ex->handle = scheduler.Submit(
        std::move(ro), [this, raw](const TokenEvent& e) { return OnToken(*raw, e); },
        // The done callback holds the exchange: it outlives the handler when the client left.
        [this, ex](const RequestResult& result) { OnDone(*ex, result); },
        r.stream ? Scheduler::StepCallback([raw] { raw->Wake(); }) : Scheduler::StepCallback());
  } catch (const QueueFullError& e) {
    throw ApiError(429, "rate_limit_error", "rate_limit_exceeded", std::nullopt, e.what());
  } catch (const Error& e) {
    throw ApiError::InvalidValue(r.chat ? "messages" : "prompt", e.what());
  }
  if (r.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    ++streams_open;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, ex](size_t, httplib::DataSink& sink) { return Pump(*ex, sink); },
        [this, ex](bool success) {
          if (!success || !ex->done) Abandon(*ex);
          --streams_open;
        });
    return;
  }
  // Nothing is written before the answer, so a client that leaves is seen on its socket, polled
  // every 10 ms (one non-blocking peek): a small model decodes thousands of tokens per second.
  const int socket = ConnectionSocket(req);
  bool left = false;
  for (;;) {
    if (ex->handle->WaitFor(std::clamp(ex->deadline - Now(), 0.001, 0.01))) break;
    if (socket >= 0 && !left && PeerClosed(socket)) {
      left = true;
      ++non_streaming_abandoned;
      Abandon(*ex);
    }
    if (stopping || Now() > ex->deadline) {
      {
        std::lock_guard lock(ex->mutex);
        ex->timed_out = !stopping;
      }
      ex->handle->Cancel();
    }
  }
  std::lock_guard lock(ex->mutex);
  if (ex->error) throw *ex->error;
  res.set_content(Dump(ex->response), "application/json");
}

// The grammar of a forced call. A prompt that leaves <think> open gets "</think>" first: the
// forced call skips the reasoning, as DeepSeek's own forced calls effectively do.
std::shared_ptr<const ToolCallGrammar> Server::Impl::ForcedToolCall(const ApiRequest& r,
                                                                    bool close_think,
                                                                    int64_t max_tokens) const {
  if (!vocab_bytes)
    throw ApiError::InvalidValue("tool_choice",
                                 "this model's tokenizer is not byte-level, so tool calls "
                                 "cannot be forced; use tool_choice auto");
  const bool named = r.tool_choice == "function";
  std::shared_ptr<const ToolCallGrammar> grammar;
  try {
    grammar = ToolCallGrammar::Make(
        tokenizer, vocab_bytes, close_think,
        named ? std::vector<std::string>{r.tool_choice_name} : r.tool_names, named);
  } catch (const Error& e) {
    throw ApiError::InvalidValue("tool_choice", e.what());
  }
  if (max_tokens < grammar->MinTokens())
    throw ApiError::InvalidValue(r.max_tokens ? "max_tokens" : "messages",
                                 "a forced tool call takes at least " +
                                     std::to_string(grammar->MinTokens()) + " tokens, but only " +
                                     std::to_string(max_tokens) + " are left for the completion");
  return grammar;
}

void Server::Impl::Abandon(Exchange& ex) {
  {
    std::lock_guard lock(ex.mutex);
    ex.client_gone = true;
  }
  ex.handle->Cancel();
}

// Writes the stream's pending frames; keep-alive comments while nothing comes.
bool Server::Impl::Pump(Exchange& ex, httplib::DataSink& sink) {
  std::deque<std::string> frames;
  bool done;
  {
    std::unique_lock lock(ex.mutex);
    const double wait = std::clamp(ex.deadline - Now(), 0.001, 1.0);
    ex.cv.wait_for(lock, std::chrono::duration<double>(wait),
                   [&] { return !ex.events.empty() || ex.done; });
    frames.swap(ex.events);
    done = ex.done;
  }
  if (!done && Now() > ex.deadline) {
    {
      std::lock_guard lock(ex.mutex);
      ex.timed_out = true;
    }
    ex.handle->Cancel();
  }
  if (frames.empty() && !done) {
    if (stopping) {
      Abandon(ex);
      return false;
    }
    // A comment keeps proxies and clients from timing out, and finds a closed connection.
    frames.push_back(": keep-alive\n\n");
  }
  // One write for everything pending (a step's tokens of every choice): one syscall.
  std::string out;
  for (const std::string& f : frames) out += f;
  if (!sink.write(out.data(), out.size())) {
    Abandon(ex);
    return false;
  }
  if (done) {
    std::lock_guard lock(ex.mutex);
    if (ex.events.empty()) {
      sink.done();
    }
  }
  return true;
}

}  // namespace whale
