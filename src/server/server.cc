// Server::Impl's HTTP side: the routes and their error mapping (every exception becomes an
// OpenAI error), API-key checks, CORS, /metrics, /v1/models, the web UI, and the public Server
// methods. A route's generation (submission, per-token chunks, streaming) is in exchange.cc.
#include "server/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "server/api_error.h"
#include "server/server_impl.h"
#include "util/error.h"

#if __has_include("server/web_assets.h")
#include "server/web_assets.h"
#define WHALE_WEB_ASSETS 1
#endif

namespace whale {
namespace {

// Connections the kernel queues before the accept loop takes them (capped by net.core.somaxconn).
constexpr int kListenBacklog = 1024;

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

}  // namespace

Server::Impl::Impl(Scheduler& s, const Tokenizer& t, const ChatTemplate& c,
                   std::vector<int32_t> stops, ServerOptions o)
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

void Server::Impl::Count(const std::string& route, int status) {
  std::lock_guard lock(metrics_mutex);
  ++requests_by_route[route + " " + std::to_string(status)];
}

void Server::Impl::SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status >= 500) res.set_header("x-should-retry", "false");
  if (e.status == 429) res.set_header("Retry-After", "1");
  res.set_content(Dump(e.Body()), "application/json");
}

ApiError Server::Impl::Internal(const std::string& message) {
  return ApiError(500, "server_error", "internal_error", std::nullopt, message);
}

bool Server::Impl::Authorized(const httplib::Request& req) const {
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

bool Server::Impl::Protected(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/chat/completions" || path == "/completions" ||
         path.rfind("/models", 0) == 0;
}

void Server::Impl::Chat(const httplib::Request& req, httplib::Response& res) {
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

void Server::Impl::Completion(const httplib::Request& req, httplib::Response& res) {
  ApiRequest r = ParseCompletionRequest(req.body, limits);
  CheckModel(r.model);
  std::vector<int32_t> prompt = r.prompt_is_tokens
                                    ? r.prompt_tokens
                                    : tokenizer.Encode(r.prompt, /*add_special_tokens=*/true);
  Generate(req, res, std::move(r), std::move(prompt), false);
}

void Server::Impl::CheckModel(const std::string& name) const {
  if (name != options.model_name)
    throw ApiError(
        404, "invalid_request_error", "model_not_found", "model",
        "The model '" + name + "' does not exist; this server serves '" + options.model_name + "'");
}

Json Server::Impl::ModelJson() const {
  return {{"id", options.model_name},
          {"object", "model"},
          {"created", model_created},
          {"owned_by", "whale"},
          {"max_model_len", scheduler.options().context}};
}

std::string Server::Impl::Metrics() {
  const SchedulerStats s = scheduler.stats();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out +=
        Cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", value, "\n");
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
  metric("whale_prompt_tokens_total", "counter", "Prompt tokens submitted.", s.prompt_tokens_total);
  metric("whale_prefix_cache_hit_tokens_total", "counter",
         "Prompt tokens served from the prefix cache.", s.cached_tokens_total);
  metric("whale_generation_tokens_total", "counter", "Tokens generated.", s.generated_tokens_total);
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
void Server::Impl::Guard(const std::string& route, const httplib::Request& req,
                         httplib::Response& res, F f) {
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

void Server::Impl::Routes() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(60);
  http.set_write_timeout(60);
  const int threads = options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Without TCP_NODELAY (httplib's default is off) a response's second small write (the first SSE
  // chunk after the headers) waits for the client's delayed ACK: up to 40 ms on Linux, which
  // showed as a 40-45 ms p99 time to first token with a single stream. Accepted sockets inherit
  // the option from the listening one.
  http.set_tcp_nodelay(true);
  // httplib's default options, and the socket kept so that Bind() can lengthen its backlog.
  http.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_socket = sock;
  });
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
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
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
    Guard("metrics", req, res,
          [this](const auto&, auto& s) { s.set_content(Metrics(), "text/plain; version=0.0.4"); });
  });
  http.Get(R"(/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
    Guard("static", req, res, [](const auto& q, auto& s) { Static(q, s); });
  });
}

void Server::Impl::Static(const httplib::Request& req, httplib::Response& res) {
#ifdef WHALE_WEB_ASSETS
  if (const WebAsset* asset = FindWebAsset(req.path)) {
    // Built by appends: out of line, GCC 12 at -O3 flags `"\"" + std::string` with a false
    // -Wrestrict (its bug 105651).
    std::string etag = "\"";
    etag += std::to_string(std::hash<std::string_view>{}(asset->body));
    etag += '"';
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
  // Debian's cpp-httplib is a compiled library that listens with a backlog of 5 (its
  // CPPHTTPLIB_LISTEN_BACKLOG macro only reaches header-only builds). A burst of new connections
  // overflowed that queue, the kernel dropped SYNs (TcpExtListenOverflows in /proc/net/netstat)
  // and each such client waited for the 1 s SYN retransmission: the ~1 s TTFT p99 of the load
  // test. Calling listen() again on a listening socket sets its backlog (Linux and the BSDs).
  if (::listen(impl_->listen_socket, kListenBacklog) != 0)
    Fail("cannot set the listen backlog of ", o.host, ":", port, ": ", std::strerror(errno));
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
