// Server: the OpenAI-compatible HTTP API over a Scheduler (spec openai-api.md):
//   POST /v1/chat/completions, POST /v1/completions (also without /v1), GET /v1/models[/{id}],
//   GET /health, GET /metrics (Prometheus text), and the embedded web UI at GET / when the
//   build has it. Streaming is SSE (data: chunks, then data: [DONE]); errors are OpenAI-shaped
//   with the right status, before any byte of a stream is sent, or as an in-band error event
//   after. A client that disconnects mid-stream cancels its generation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace whale {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: an ephemeral port (see Server::port())
  std::vector<std::string> api_keys;  // empty: no authentication
  std::string model_name = "whale";   // the served name, echoed in every response
  size_t max_body_bytes = size_t{32} << 20;
  double request_timeout_seconds = 600;  // queueing + generation, per request
  int http_threads = 64;                 // connections served at once (streams hold one each)
};

class Server {
 public:
  // `stop_tokens`: ids that end a generation (the checkpoint's EOS). All references must outlive
  // the server.
  Server(Scheduler& scheduler, const Tokenizer& tokenizer, const ChatTemplate& chat_template,
         std::vector<int32_t> stop_tokens, ServerOptions options);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (throws Error naming them when it cannot) and returns the port.
  int Bind();
  // Serves on the bound socket until Stop().
  void Run();
  // Bind() and Run() on a background thread.
  void Start();
  // Ends Run(): open streams are cancelled, the listening socket closes.
  void Stop();
  int port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace whale
