// A tiny random R1-style model with the serving test tokenizer (tests/data/serve), behind a
// Server on an ephemeral loopback port, and helpers to call it.
#pragma once

#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../test_temp.h"
#include "model/model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"
#include "runtime/scheduler.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace whale::testing {

// The checkpoint directory, written once per test binary: tiny-v3 sized to the test tokenizer.
inline const std::string& ServeModelDir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const fs::path data = fs::path(WHALE_TEST_DATA) / "serve";
    const std::string out = TestTempDir("serve");
    const Tokenizer tokenizer = Tokenizer::FromModelDir(data.string());
    ModelConfig config = FindPreset("tiny-v3").config;
    config.vocab_size = tokenizer.vocab_size();
    config.bos_token_id = *tokenizer.bos_id();
    config.eos_token_ids = {*tokenizer.eos_id()};
    ThreadPool pool(1);
    RandomCheckpointOptions options;
    options.storage = StorageType::kBF16;
    options.seed = 5;
    WriteRandomCheckpoint(config, options, out, pool);
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(data / name, fs::path(out) / name, fs::copy_options::overwrite_existing);
    return out;
  }();
  return dir;
}

struct ServeFixture {
  // `eos_stops`: end generations at EOS (off: every generation runs to its max_tokens).
  explicit ServeFixture(ServerOptions server_options = {}, int parallel = 4, int64_t context = 256,
                        bool eos_stops = true)
      : tokenizer(Tokenizer::FromModelDir(ServeModelDir())),
        chat_template(ChatTemplate::FromModelDir(ServeModelDir())),
        weights(Weights::Load(ServeModelDir())),
        pool(2),
        model(weights, pool, {.max_batch_tokens = 64, .max_context = context}),
        scheduler(model, {.parallel = parallel, .context = context, .prefix_cache_entries = 2}) {
    server_options.port = 0;
    server_options.model_name = "tiny-r1";
    std::vector<int32_t> stops;
    if (eos_stops) stops.push_back(*tokenizer.eos_id());
    server = std::make_unique<Server>(scheduler, tokenizer, chat_template, stops, server_options);
    server->Start();
  }
  ~ServeFixture() { server->Stop(); }

  httplib::Client Client() const {
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(120);
    return client;
  }

  // POSTs JSON; returns (status, parsed body or the raw text as a string).
  std::pair<int, nlohmann::json> Post(const std::string& path, const std::string& body,
                                      const httplib::Headers& headers = {}) const {
    auto client = Client();
    auto res = client.Post(path, headers, body, "application/json");
    if (!res) return {-1, nullptr};
    auto parsed = nlohmann::json::parse(res->body, nullptr, false);
    return {res->status, parsed.is_discarded() ? nlohmann::json(res->body) : parsed};
  }

  Tokenizer tokenizer;
  ChatTemplate chat_template;
  Weights weights;
  ThreadPool pool;
  Model model;
  Scheduler scheduler;
  std::unique_ptr<Server> server;
};

// The data: payloads of an SSE body, in order ("[DONE]" included); comments skipped.
inline std::vector<std::string> SseEvents(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string frame = body.substr(pos, end - pos);
    if (frame.rfind("data: ", 0) == 0) events.push_back(frame.substr(6));
    pos = end + 2;
  }
  return events;
}

}  // namespace whale::testing
