#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "runtime/chat_output.h"
#include "server/api_error.h"
#include "server/client_socket.h"
#include "server/openai_request.h"
#include "util/error.h"

#if __has_include("server/web_assets.h")
#include "server/web_assets.h"
#define WHALE_WEB_ASSETS 1
#endif

namespace whale {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  // Replace, never throw, on invalid UTF-8: a lossy logprob token string must not become a 500.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          std::hash<std::thread::id>{}(std::this_thread::get_id()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng() & 15];
  return s;
}

// Compares without an early exit, so timing does not reveal how much of a key matched.
bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// A finite logprob: OpenAI uses -9999 for "impossible"; JSON has no -Infinity.
double Finite(float x) {
  return std::isfinite(x) ? std::max<double>(x, -9999.0) : -9999.0;
}

}  // namespace

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

struct Server::Impl {
  Scheduler& scheduler;
  const Tokenizer& tokenizer;
  const ChatTemplate& chat_template;
  std::vector<int32_t> stop_tokens;
  ServerOptions options;
  RequestLimits limits;
  httplib::Server http;
  std::thread thread;
  int bound_port = -1;
  std::atomic<bool> stopping{false};
  int64_t model_created = 0;

  std::mutex metrics_mutex;
  std::map<std::string, int64_t> requests_by_route;  // "route status" -> count
  std::atomic<int64_t> streams_open{0};
  std::atomic<int64_t> non_streaming_abandoned{0};  // clients gone before a non-streaming answer
  std::shared_ptr<const VocabBytes> vocab_bytes;    // for forced tool calls; null: not byte-level

  Impl(Scheduler& s, const Tokenizer& t, const ChatTemplate& c, std::vector<int32_t> stops,
       ServerOptions o)
      : scheduler(s),
        tokenizer(t),
        chat_template(c),
        stop_tokens(std::move(stops)),
        options(std::move(o)) {
    limits.max_n = scheduler.options().parallel;
    limits.vocab_size = scheduler.vocab_size();
    model_created = static_cast<int64_t>(std::time(nullptr));
    if (tokenizer.has_byte_level_decoder()) vocab_bytes = std::make_shared<VocabBytes>(tokenizer);
    Routes();
  }

  // ---- responses -------------------------------------------------------------------------------
  void Count(const std::string& route, int status) {
    std::lock_guard lock(metrics_mutex);
    ++requests_by_route[route + " " + std::to_string(status)];
  }

  static void SendError(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.status >= 500) res.set_header("x-should-retry", "false");
    if (e.status == 429) res.set_header("Retry-After", "1");
    res.set_content(Dump(e.Body()), "application/json");
  }

  static ApiError Internal(const std::string& message) {
    return ApiError(500, "server_error", "internal_error", std::nullopt, message);
  }

  bool Authorized(const httplib::Request& req) const {
    if (options.api_keys.empty()) return true;
    std::string key;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.size() > 7 &&
        (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0 ||
         auth.compare(0, 7, "BEARER ") == 0)) {
      key = auth.substr(7);
    } else if (req.has_header("x-api-key")) {
      key = req.get_header_value("x-api-key");
    } else if (req.has_header("api-key")) {
      key = req.get_header_value("api-key");
    }
    bool ok = false;
    for (const std::string& k : options.api_keys) ok |= ConstantTimeEqual(key, k);
    return ok;
  }

  static bool Protected(const std::string& path) {
    return path.rfind("/v1/", 0) == 0 || path == "/chat/completions" || path == "/completions" ||
           path.rfind("/models", 0) == 0;
  }

  // ---- generation ------------------------------------------------------------------------------
  Json ChunkBase(const Exchange& ex) const {
    return {{"id", ex.id},
            {"object", ex.request.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", ex.created},
            {"model", options.model_name}};
  }

  std::string Frame(const Json& chunk) const { return "data: " + Dump(chunk) + "\n\n"; }

  // The constant start of every chat chunk of an exchange, 'data:
  // {"id":...,"model":...,"choices":[' (ordered_json keeps the key order), made once so a per-token
  // chunk only dumps its choice.
  std::string ChunkHead(const Exchange& ex) const {
    std::string head = Frame(ChunkBase(ex));  // data: {...}\n\n
    head.resize(head.size() - 3);             // drop "}\n\n"
    return head + ",\"choices\":[";
  }

  std::string ChatChunk(const Exchange& ex, int index, Json delta, const Json& logprobs,
                        const Json& finish) const {
    Json choice = {{"index", index},
                   {"delta", std::move(delta)},
                   {"logprobs", nullptr},
                   {"finish_reason", finish}};
    if (!logprobs.is_null()) choice["logprobs"] = {{"content", logprobs}, {"refusal", nullptr}};
    return ex.chunk_head + Dump(choice) + "]}\n\n";
  }

  static Json ToolCallJson(const ToolCallDelta& call) {
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
  void StreamDelta(Exchange& ex, int index, const ChatDelta& d, const Json& logprobs) const {
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

  ChatDelta Filter(const Exchange& ex, ChatDelta d) const {
    if (!ex.request.parallel_tool_calls)
      std::erase_if(d.tool_calls, [](const ToolCallDelta& c) { return c.index > 0; });
    return d;
  }

  bool OnToken(Exchange& ex, const TokenEvent& event) {
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

  void OnDone(Exchange& ex, const RequestResult& result) {
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
        choices.push_back({{"index", i},
                           {"message", message},
                           {"logprobs", logprobs},
                           {"finish_reason", finish}});
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
      ex.error =
          ex.timed_out
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
  void Generate(const httplib::Request& req, httplib::Response& res, ApiRequest request,
                std::vector<int32_t> prompt, bool start_in_reasoning) {
    const int64_t context = scheduler.options().context;
    const int64_t p = static_cast<int64_t>(prompt.size());
    if (p == 0)
      throw ApiError::InvalidValue(request.chat ? "messages" : "prompt", "the prompt is empty");
    if (p >= context || (request.max_tokens && p + *request.max_tokens > context)) {
      std::string message = "This model's maximum context length is " + std::to_string(context) +
                            " tokens. However, ";
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
    // Nothing is written before the answer, so a client that leaves is seen on its socket.
    const int socket = ConnectionSocket(req);
    bool left = false;
    for (;;) {
      if (ex->handle->WaitFor(std::clamp(ex->deadline - Now(), 0.001, 0.1))) break;
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
  std::shared_ptr<const ToolCallGrammar> ForcedToolCall(const ApiRequest& r, bool close_think,
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

  void Abandon(Exchange& ex) {
    {
      std::lock_guard lock(ex.mutex);
      ex.client_gone = true;
    }
    ex.handle->Cancel();
  }

  // Writes the stream's pending frames; keep-alive comments while nothing comes.
  bool Pump(Exchange& ex, httplib::DataSink& sink) {
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

  // ---- routes ----------------------------------------------------------------------------------
  void Chat(const httplib::Request& req, httplib::Response& res) {
    ApiRequest r = ParseChatRequest(req.body, limits);
    CheckModel(r.model);
    ChatTemplate::Options options_t;
    options_t.add_generation_prompt = true;
    if (r.tool_choice != "none") options_t.tools = r.tools;
    for (const auto& [key, value] : r.template_kwargs.items()) options_t.extra[key] = value;
    std::string text;
    try {
      text = chat_template.Render(r.messages, options_t);
    } catch (const ChatTemplateRaised& e) {
      throw ApiError::InvalidValue("messages", std::string("the chat template rejected the "
                                                           "conversation: ") +
                                                   e.what());
    } catch (const std::exception& e) {
      throw Internal(std::string("rendering the chat template failed: ") + e.what());
    }
    // The R1 template opens <think> itself: generation starts inside the reasoning.
    const std::string_view tail =
        std::string_view(text).substr(text.size() >= 8 ? text.size() - 8 : 0);
    const bool open_think = tail.find("<think>") != std::string_view::npos;
    std::vector<int32_t> prompt = tokenizer.Encode(text, /*add_special_tokens=*/false);
    Generate(req, res, std::move(r), std::move(prompt), open_think);
  }

  void Completion(const httplib::Request& req, httplib::Response& res) {
    ApiRequest r = ParseCompletionRequest(req.body, limits);
    CheckModel(r.model);
    std::vector<int32_t> prompt = r.prompt_is_tokens
                                      ? r.prompt_tokens
                                      : tokenizer.Encode(r.prompt, /*add_special_tokens=*/true);
    Generate(req, res, std::move(r), std::move(prompt), false);
  }

  void CheckModel(const std::string& name) const {
    if (name != options.model_name)
      throw ApiError(404, "invalid_request_error", "model_not_found", "model",
                     "The model '" + name + "' does not exist; this server serves '" +
                         options.model_name + "'");
  }

  Json ModelJson() const {
    return {{"id", options.model_name},
            {"object", "model"},
            {"created", model_created},
            {"owned_by", "whale"},
            {"max_model_len", scheduler.options().context}};
  }

  std::string Metrics() {
    const SchedulerStats s = scheduler.stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
      out += Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", value,
                 "\n");
    };
    out +=
        "# HELP whale_http_requests_total HTTP requests by route and status.\n"
        "# TYPE whale_http_requests_total counter\n";
    {
      std::lock_guard lock(metrics_mutex);
      for (const auto& [key, count] : requests_by_route) {
        const size_t space = key.rfind(' ');
        out += Cat("whale_http_requests_total{route=\"", key.substr(0, space), "\",status=\"",
                   key.substr(space + 1), "\"} ", count, "\n");
      }
    }
    metric("whale_requests_total", "counter", "Generation requests submitted.", s.requests_total);
    metric("whale_requests_finished_total", "counter", "Generation requests finished.",
           s.requests_finished);
    metric("whale_requests_cancelled_total", "counter",
           "Generation requests cancelled (client gone, timeout).", s.requests_cancelled);
    metric("whale_prompt_tokens_total", "counter", "Prompt tokens submitted.",
           s.prompt_tokens_total);
    metric("whale_prefix_cache_hit_tokens_total", "counter",
           "Prompt tokens served from the prefix cache.", s.cached_tokens_total);
    metric("whale_generation_tokens_total", "counter", "Tokens generated.",
           s.generated_tokens_total);
    metric("whale_steps_total", "counter", "Batched forward steps.", s.steps_total);
    metric("whale_num_requests_waiting", "gauge", "Requests in the queue.", s.waiting);
    metric("whale_num_sequences_running", "gauge", "Sequences decoding or prefilling.", s.running);
    metric("whale_batch_sequences", "gauge", "Sequences in the last step.", s.last_batch_sequences);
    metric("whale_batch_tokens", "gauge", "Tokens in the last step.", s.last_batch_tokens);
    metric("whale_generation_tokens_per_second", "gauge",
           "Generated tokens per second over the last 5 seconds.", s.tokens_per_second);
    metric("whale_forward_seconds_total", "counter", "Scheduler time in the model's Forward.",
           s.busy_seconds);
    metric("whale_sample_seconds_total", "counter",
           "Scheduler thread CPU time sampling (logprobs, forced-call masks, finishing requests).",
           s.sample_seconds);
    metric("whale_token_callback_seconds_total", "counter",
           "Scheduler thread CPU time in the per-token output path (detokenizing, parsing, "
           "SSE frames, waking writers).",
           s.callback_seconds);
    metric("whale_kv_caches_free", "gauge", "KV caches neither running nor cached.", s.free_caches);
    metric("whale_prefix_cache_entries", "gauge", "Finished sequences kept for prefix reuse.",
           s.cached_entries);
    metric("whale_streams_open", "gauge", "Open SSE streams.", static_cast<double>(streams_open));
    metric("whale_client_disconnects_total", "counter",
           "Non-streaming requests whose client left before the answer (generation cancelled).",
           static_cast<double>(non_streaming_abandoned));
    return out;
  }

  // Runs a handler: every exception becomes an OpenAI error; nothing escapes.
  template <typename F>
  void Guard(const std::string& route, const httplib::Request& req, httplib::Response& res, F f) {
    try {
      f(req, res);
    } catch (const ApiError& e) {
      SendError(res, e);
    } catch (const std::exception& e) {
      SendError(res, Internal(e.what()));
    } catch (...) {
      SendError(res, Internal("unknown error"));
    }
    Count(route, res.status < 0 ? 200 : res.status);
  }

  void Routes() {
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(60);
    http.set_write_timeout(60);
    const int threads = options.http_threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      res.set_header("x-request-id", RandomHex(32));
      res.set_header("Access-Control-Allow-Origin", "*");
      res.set_header("Access-Control-Expose-Headers", "x-request-id");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        const std::string asked = req.get_header_value("Access-Control-Request-Headers");
        res.set_header("Access-Control-Allow-Headers",
                       asked.empty() ? "authorization, content-type" : asked);
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
      if (Protected(req.path) && !Authorized(req)) {
        SendError(res, ApiError(401, "invalid_request_error", "invalid_api_key", std::nullopt,
                                "Incorrect API key provided"));
        Count("auth", 401);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty() || res.content_provider_)
            return httplib::Server::HandlerResponse::Unhandled;
          if (res.status == 413) {
            SendError(res, ApiError(413, "invalid_request_error", "request_too_large", std::nullopt,
                                    "the request body exceeds this server's limit"));
          } else if (res.status == 404) {
            SendError(res, ApiError(404, "invalid_request_error", "not_found", std::nullopt,
                                    "no route for " + req.method + " " + req.path));
          } else {
            SendError(res, ApiError(res.status, "invalid_request_error", "http_error", std::nullopt,
                                    "HTTP error " + std::to_string(res.status)));
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SendError(res, Internal("unhandled exception"));
        });
    auto chat = [this](const httplib::Request& req, httplib::Response& res) {
      Guard("chat", req, res, [this](const auto& q, auto& s) { Chat(q, s); });
    };
    auto completion = [this](const httplib::Request& req, httplib::Response& res) {
      Guard("completions", req, res, [this](const auto& q, auto& s) { Completion(q, s); });
    };
    auto models = [this](const httplib::Request& req, httplib::Response& res) {
      Guard("models", req, res, [this](const auto&, auto& s) {
        s.set_content(Dump({{"object", "list"}, {"data", Json::array({ModelJson()})}}),
                      "application/json");
      });
    };
    auto model = [this](const httplib::Request& req, httplib::Response& res) {
      Guard("models", req, res, [this](const auto& q, auto& s) {
        CheckModel(q.matches[1]);
        s.set_content(Dump(ModelJson()), "application/json");
      });
    };
    http.Post("/v1/chat/completions", chat);
    http.Post("/chat/completions", chat);
    http.Post("/v1/completions", completion);
    http.Post("/completions", completion);
    http.Get("/v1/models", models);
    http.Get("/models", models);
    http.Get(R"(/v1/models/(.+))", model);
    http.Get(R"(/models/(.+))", model);
    http.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
      Guard("health", req, res,
            [](const auto&, auto& s) { s.set_content(R"({"status":"ok"})", "application/json"); });
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      Guard("metrics", req, res, [this](const auto&, auto& s) {
        s.set_content(Metrics(), "text/plain; version=0.0.4");
      });
    });
    http.Get(R"(/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
      Guard("static", req, res, [](const auto& q, auto& s) { Static(q, s); });
    });
  }

  static void Static(const httplib::Request& req, httplib::Response& res) {
#ifdef WHALE_WEB_ASSETS
    if (const WebAsset* asset = FindWebAsset(req.path)) {
      const std::string etag =
          "\"" + std::to_string(std::hash<std::string_view>{}(asset->body)) + "\"";
      res.set_header("ETag", etag);
      // index.html revalidates so a new build shows at once; hashed assets may be cached.
      res.set_header("Cache-Control", req.path == "/" || req.path == "/index.html"
                                          ? "no-cache"
                                          : "public, max-age=3600");
      if (req.get_header_value("If-None-Match") == etag) {
        res.status = 304;
        return;
      }
      res.set_content(std::string(asset->body), std::string(asset->content_type));
      return;
    }
#endif
    if (req.path == "/") {
      res.set_content("whale: OpenAI-compatible API at /v1 (this build has no web UI)\n",
                      "text/plain");
      return;
    }
    throw ApiError(404, "invalid_request_error", "not_found", std::nullopt,
                   "no route for GET " + req.path);
  }
};

Server::Server(Scheduler& scheduler, const Tokenizer& tokenizer, const ChatTemplate& chat_template,
               std::vector<int32_t> stop_tokens, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, tokenizer, chat_template, std::move(stop_tokens),
                                   std::move(options))) {}

Server::~Server() {
  Stop();
}

int Server::Bind() {
  const ServerOptions& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
  } else if (!impl_->http.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0) Fail("cannot listen on ", o.host, ":", o.port, " (in use, or not an address here)");
  impl_->bound_port = port;
  return port;
}

void Server::Run() {
  impl_->http.listen_after_bind();
}

void Server::Start() {
  Bind();
  impl_->thread = std::thread([this] { Run(); });
  while (!impl_->http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Server::Stop() {
  if (!impl_) return;
  impl_->stopping = true;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const {
  return impl_->bound_port;
}

}  // namespace whale
