// whale serve: the OpenAI-compatible HTTP server (continuous batching, SSE streaming, reasoning
// and tool-call parsing, prefix cache) over one checkpoint.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "command.h"
#include "embedded_model.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/scheduler.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

struct ServeFlags {
  std::string model;
  std::string name;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> api_keys;
  int parallel = 4;
  int64_t context = 4096;
  int64_t batch = 256;
  int prefix_cache = -1;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  double timeout = 600;
  double max_body_mib = 32;
};

whale::Server* g_server = nullptr;

void OnSignal(int) {
  if (g_server) g_server->Stop();
}

int Serve(ServeFlags& f) {
  if (f.model.empty() && f.name.empty()) f.name = "whale-tiny-r1";  // not the cache folder's name
  f.model = whale::app::ModelDirOrEmbedded(f.model);
  if (!std::filesystem::exists(std::filesystem::path(f.model) / "tokenizer.json"))
    whale::Fail(f.model,
                ": no tokenizer.json; the server needs the checkpoint's tokenizer (whale "
                "init --tokenizer DIR copies one in)");
  const whale::Tokenizer tokenizer = whale::Tokenizer::FromModelDir(f.model);
  const whale::ChatTemplate chat_template = whale::ChatTemplate::FromModelDir(f.model);
  const whale::Weights weights = whale::Weights::Load(f.model);
  const whale::ModelConfig& config = weights.config();
  if (tokenizer.vocab_size() > config.vocab_size)
    whale::Fail(f.model, ": the tokenizer has ", tokenizer.vocab_size(),
                " tokens but config.json's vocab_size is ", config.vocab_size);
  whale::ThreadPool pool(f.threads);
  whale::ModelOptions options;
  options.max_context = f.context;
  options.max_batch_tokens = std::max<int64_t>(f.batch, f.parallel);
  whale::Model model(weights, pool, options);
  whale::SchedulerOptions scheduling;
  scheduling.parallel = f.parallel;
  scheduling.context = f.context;
  scheduling.prefix_cache_entries = f.prefix_cache >= 0 ? f.prefix_cache : f.parallel;
  whale::Scheduler scheduler(model, scheduling);
  std::vector<int32_t> stop_tokens;
  for (int64_t eos : config.eos_token_ids) stop_tokens.push_back(static_cast<int32_t>(eos));
  if (auto eos = tokenizer.eos_id();
      eos && std::find(stop_tokens.begin(), stop_tokens.end(), *eos) == stop_tokens.end())
    stop_tokens.push_back(*eos);
  whale::ServerOptions server_options;
  server_options.host = f.host;
  server_options.port = f.port;
  server_options.api_keys = f.api_keys;
  server_options.model_name =
      f.name.empty() ? std::filesystem::path(f.model).lexically_normal().filename().string()
                     : f.name;
  if (server_options.model_name.empty()) server_options.model_name = "whale";
  server_options.request_timeout_seconds = f.timeout;
  server_options.max_body_bytes = static_cast<size_t>(f.max_body_mib * (1 << 20));
  server_options.http_threads = std::max(16, 4 * f.parallel + 16);
  whale::Server server(scheduler, tokenizer, chat_template, stop_tokens, server_options);
  const int port = server.Bind();
  g_server = &server;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::fprintf(stderr,
               "whale serve: %s on http://%s:%d/v1 (%d parallel sequences, context %lld, %d "
               "threads%s)\n",
               server_options.model_name.c_str(), f.host.c_str(), port, f.parallel,
               static_cast<long long>(f.context), pool.size(),
               f.api_keys.empty() ? "" : ", API key required");
  server.Run();
  g_server = nullptr;
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto f = std::make_shared<ServeFlags>();
  sub.add_option("--model", f->model,
                 "model directory (HF layout with tokenizer.json; default: the embedded model)");
  sub.add_option("--name", f->name, "served model name (default: the directory name)");
  sub.add_option("--host", f->host, "address to bind")->capture_default_str();
  sub.add_option("--port", f->port, "port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub.add_option("--api-key", f->api_keys, "require this bearer key (repeatable)");
  sub.add_option("--parallel", f->parallel, "sequences decoded together")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub.add_option("--ctx", f->context, "context per sequence, in tokens")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20))
      ->capture_default_str();
  sub.add_option("--batch", f->batch, "tokens per forward step (prefill chunk budget)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  sub.add_option("--prefix-cache", f->prefix_cache,
                 "finished sequences kept for prefix reuse (default: --parallel; 0 = off)");
  sub.add_option("--threads", f->threads, "compute threads")->check(CLI::Range(1, 1024));
  sub.add_option("--timeout", f->timeout, "seconds a request may take, queueing included")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--max-body-mib", f->max_body_mib, "largest request body")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [f] { return Serve(*f); };
}

}  // namespace

WHALE_COMMAND(serve, "serve a checkpoint over an OpenAI-compatible HTTP API", Setup);
