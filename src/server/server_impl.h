// Server::Impl: the server's state (options, the httplib server, metrics counters) and the
// declarations of its members, which live in two files: server.cc (routes, authentication,
// metrics, the web UI, the error mapping) and exchange.cc (a generation request from submission
// to its last SSE frame or its response object). Internal to src/server: server.h stays free of
// httplib.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/chat_output.h"
#include "runtime/scheduler.h"
#include "runtime/token_constraint.h"
#include "server/api_error.h"
#include "server/exchange.h"
#include "server/openai_request.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace whale {

inline std::string Dump(const Json& j) {
  // Replace, never throw, on invalid UTF-8: a lossy logprob token string must not become a 500.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

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
  // The listening socket, recorded when httplib creates it (see Routes()); -1 before.
  socket_t listen_socket = -1;
  std::atomic<bool> stopping{false};
  int64_t model_created = 0;

  std::mutex metrics_mutex;
  std::map<std::string, int64_t> requests_by_route;  // "route status" -> count
  std::atomic<int64_t> streams_open{0};
  std::atomic<int64_t> non_streaming_abandoned{0};  // clients gone before a non-streaming answer
  std::shared_ptr<const VocabBytes> vocab_bytes;    // for forced tool calls; null: not byte-level

  Impl(Scheduler& s, const Tokenizer& t, const ChatTemplate& c, std::vector<int32_t> stops,
       ServerOptions o);

  // ---- responses (server.cc) -------------------------------------------------------------------
  void Count(const std::string& route, int status);
  static void SendError(httplib::Response& res, const ApiError& e);
  static ApiError Internal(const std::string& message);
  bool Authorized(const httplib::Request& req) const;
  static bool Protected(const std::string& path);

  // ---- generation (exchange.cc) ----------------------------------------------------------------
  Json ChunkBase(const Exchange& ex) const;
  std::string Frame(const Json& chunk) const;
  std::string ChunkHead(const Exchange& ex) const;
  std::string ChatChunk(const Exchange& ex, int index, Json delta, const Json& logprobs,
                        const Json& finish) const;
  static Json ToolCallJson(const ToolCallDelta& call);
  void StreamDelta(Exchange& ex, int index, const ChatDelta& d, const Json& logprobs) const;
  ChatDelta Filter(const Exchange& ex, ChatDelta d) const;
  bool OnToken(Exchange& ex, const TokenEvent& event);
  void OnDone(Exchange& ex, const RequestResult& result);
  void Generate(const httplib::Request& req, httplib::Response& res, ApiRequest request,
                std::vector<int32_t> prompt, bool start_in_reasoning);
  std::shared_ptr<const ToolCallGrammar> ForcedToolCall(const ApiRequest& r, bool close_think,
                                                        int64_t max_tokens) const;
  void Abandon(Exchange& ex);
  bool Pump(Exchange& ex, httplib::DataSink& sink);

  // ---- routes (server.cc) ----------------------------------------------------------------------
  void Chat(const httplib::Request& req, httplib::Response& res);
  void Completion(const httplib::Request& req, httplib::Response& res);
  void CheckModel(const std::string& name) const;
  Json ModelJson() const;
  std::string Metrics();
  template <typename F>
  void Guard(const std::string& route, const httplib::Request& req, httplib::Response& res, F f);
  void Routes();
  static void Static(const httplib::Request& req, httplib::Response& res);
};

}  // namespace whale
