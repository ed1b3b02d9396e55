// The HTTP API against a live server on loopback: response shapes, streaming order and equality
// with non-streaming results, usage counts, logprobs, stop strings, errors for bad input.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace whale {
namespace {

using nlohmann::json;
using testing::ServeFixture;
using testing::SseEvents;

ServeFixture& Shared() {
  static ServeFixture fixture;
  return fixture;
}

json ChatBody(json extra = json::object()) {
  json body = {{"model", "tiny-r1"},
               {"messages", {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
               {"temperature", 0},
               {"max_tokens", 24}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// Joins a chat stream's deltas per choice; checks the event order on the way.
struct Joined {
  std::vector<std::string> reasoning, content, finish;
  std::vector<int> roles;
  json usage;
  std::string id;
};

Joined JoinStream(const std::string& body, int n) {
  Joined j;
  j.reasoning.resize(n);
  j.content.resize(n);
  j.finish.resize(n);
  j.roles.resize(n);
  const auto events = SseEvents(body);
  EXPECT_FALSE(events.empty());
  if (events.empty()) return j;
  EXPECT_EQ(events.back(), "[DONE]");
  int64_t created = -1;
  for (size_t e = 0; e + 1 < events.size(); ++e) {
    const json chunk = json::parse(events[e]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    EXPECT_EQ(chunk["model"], "tiny-r1");
    if (j.id.empty()) j.id = chunk["id"];
    EXPECT_EQ(chunk["id"], j.id);
    if (created < 0) created = chunk["created"];
    EXPECT_EQ(chunk["created"], created);
    if (chunk.contains("usage") && !chunk["usage"].is_null()) {
      EXPECT_TRUE(chunk["choices"].empty());
      EXPECT_EQ(e + 2, events.size()) << "usage comes last";
      j.usage = chunk["usage"];
      continue;
    }
    for (const json& c : chunk["choices"]) {
      const int i = c["index"];
      const json& d = c["delta"];
      EXPECT_TRUE(j.finish[i].empty()) << "nothing after a choice's finish";
      if (d.contains("role")) {
        EXPECT_EQ(j.roles[i]++, 0);
        EXPECT_TRUE(j.reasoning[i].empty() && j.content[i].empty());
      } else {
        EXPECT_EQ(j.roles[i], 1) << "the role comes first";
      }
      if (d.contains("reasoning_content") && d["reasoning_content"].is_string()) {
        EXPECT_TRUE(j.content[i].empty()) << "reasoning before content";
        j.reasoning[i] += d["reasoning_content"].get<std::string>();
      }
      if (d.contains("content") && d["content"].is_string())
        j.content[i] += d["content"].get<std::string>();
      if (!c["finish_reason"].is_null()) j.finish[i] = c["finish_reason"];
    }
  }
  return j;
}

TEST(Api, ModelsHealthAndMetrics) {
  auto& f = Shared();
  auto client = f.Client();
  auto res = client.Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json models = json::parse(res->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "tiny-r1");
  EXPECT_EQ(models["data"][0]["object"], "model");
  EXPECT_TRUE(models["data"][0]["created"].is_number_integer());
  EXPECT_EQ(client.Get("/v1/models/tiny-r1")->status, 200);
  res = client.Get("/v1/models/other");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "model_not_found");
  res = client.Get("/health");
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["status"], "ok");
  EXPECT_FALSE(res->get_header_value("x-request-id").empty());
  res = client.Get("/metrics");
  EXPECT_EQ(res->status, 200);
  for (const char* name :
       {"whale_requests_total", "whale_generation_tokens_total", "whale_num_requests_waiting",
        "whale_batch_sequences", "whale_generation_tokens_per_second"})
    EXPECT_NE(res->body.find(name), std::string::npos) << name;
  res = client.Get("/no/such/route");
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(json::parse(res->body)["error"].is_object());
  res = client.Options("/v1/chat/completions");
  EXPECT_EQ(res->status, 204);
}

TEST(Api, ChatCompletionShapeAndUsage) {
  auto& f = Shared();
  auto client = f.Client();
  auto res = client.Post("/v1/chat/completions", ChatBody().dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const std::string request_id = res->get_header_value("x-request-id");
  const json r = json::parse(res->body);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["id"], "chatcmpl-" + request_id);
  EXPECT_EQ(r["model"], "tiny-r1");
  ASSERT_EQ(r["choices"].size(), 1u);
  const json& message = r["choices"][0]["message"];
  EXPECT_EQ(message["role"], "assistant");
  const std::string finish = r["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length" || finish == "tool_calls") << finish;
  const json& u = r["usage"];
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_LE(u["completion_tokens"].get<int>(), 24);
  if (finish == "length") {
    EXPECT_EQ(u["completion_tokens"], 24);
  }
  EXPECT_LE(u["completion_tokens_details"]["reasoning_tokens"].get<int>(),
            u["completion_tokens"].get<int>());
  EXPECT_EQ(u["prompt_cache_hit_tokens"].get<int>() + u["prompt_cache_miss_tokens"].get<int>(),
            u["prompt_tokens"].get<int>());
  // The prompt is the template's rendering, encoded without adding specials again.
  const std::string rendered = f.chat_template.Render(
      nlohmann::ordered_json::array(
          {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}),
      true);
  EXPECT_EQ(u["prompt_tokens"], f.tokenizer.Encode(rendered, false).size());
  // The R1 template opened <think>: the output starts as reasoning, never shows the tags.
  const std::string all = message["reasoning_content"].is_string()
                              ? message["reasoning_content"].get<std::string>()
                              : std::string();
  EXPECT_EQ(all.find("<think>"), std::string::npos);
  if (message["content"].is_string()) {
    EXPECT_EQ(message["content"].get<std::string>().find("</think>"), std::string::npos);
  }

  // The same prompt as a text-part array: identical greedy output and prompt size.
  json parts = ChatBody();
  parts["messages"][0]["content"] = {{{"type", "text"}, {"text", "What is the weather in Paris?"}}};
  res = client.Post("/v1/chat/completions", parts.dump(), "application/json");
  const json r2 = json::parse(res->body);
  EXPECT_EQ(r2["choices"][0]["message"], message);
  EXPECT_EQ(r2["usage"]["prompt_tokens"], u["prompt_tokens"]);
  EXPECT_GT(r2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
}

TEST(Api, StreamEqualsNonStream) {
  auto& f = Shared();
  for (const json& extra : {json::object(), json{{"reasoning_format", "none"}}}) {
    const auto [status, whole] = f.Post("/v1/chat/completions", ChatBody(extra).dump());
    ASSERT_EQ(status, 200);
    json streamed = ChatBody(extra);
    streamed["stream"] = true;
    streamed["stream_options"] = {{"include_usage", true}};
    auto res = f.Client().Post("/v1/chat/completions", streamed.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    const Joined j = JoinStream(res->body, 1);
    const json& m = whole["choices"][0]["message"];
    EXPECT_EQ(j.content[0], m["content"].is_string() ? m["content"].get<std::string>() : "");
    if (extra.empty()) {
      EXPECT_EQ(j.reasoning[0], m["reasoning_content"].is_string()
                                    ? m["reasoning_content"].get<std::string>()
                                    : "");
    } else {
      EXPECT_FALSE(m.contains("reasoning_content"));  // raw: everything stays in content
      EXPECT_EQ(j.reasoning[0], "");
    }
    EXPECT_EQ(j.finish[0], whole["choices"][0]["finish_reason"]);
    json usage = whole["usage"];
    usage["prompt_tokens_details"] = j.usage["prompt_tokens_details"];  // cache hits differ
    usage["prompt_cache_hit_tokens"] = j.usage["prompt_cache_hit_tokens"];
    usage["prompt_cache_miss_tokens"] = j.usage["prompt_cache_miss_tokens"];
    EXPECT_EQ(j.usage, usage);
  }
}

TEST(Api, ChoicesStreamWithTheirOwnRoleAndFinish) {
  auto& f = Shared();
  json body = ChatBody({{"n", 2}, {"temperature", 1.0}, {"seed", 3}, {"stream", true}});
  auto res = f.Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_EQ(res->status, 200);
  const Joined j = JoinStream(res->body, 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(j.roles[i], 1);
    EXPECT_FALSE(j.finish[i].empty());
  }
  body["stream"] = false;
  const auto [status, whole] = f.Post("/v1/chat/completions", body.dump());
  ASSERT_EQ(status, 200);
  ASSERT_EQ(whole["choices"].size(), 2u);
  EXPECT_EQ(whole["choices"][1]["index"], 1);
  for (int i = 0; i < 2; ++i) {
    const json& m = whole["choices"][i]["message"];
    EXPECT_EQ(j.reasoning[i],
              m["reasoning_content"].is_string() ? m["reasoning_content"].get<std::string>() : "");
  }
}

TEST(Api, CompletionsStopStringsAndLogprobs) {
  auto& f = Shared();
  json body = {
      {"model", "tiny-r1"}, {"prompt", "Hello, how are"}, {"max_tokens", 30}, {"temperature", 0}};
  auto [status, r] = f.Post("/v1/completions", body.dump());
  ASSERT_EQ(status, 200) << r;
  EXPECT_EQ(r["object"], "text_completion");
  const std::string text = r["choices"][0]["text"];
  // Stop at a piece of the greedy text: the output ends right before it, finish "stop".
  if (text.size() >= 6) {
    const std::string stop = text.substr(text.size() / 2, 3);
    body["stop"] = {"@@never@@", stop, "##", "%%", "^^"};
    auto [s2, r2] = f.Post("/v1/completions", body.dump());
    EXPECT_EQ(r2["choices"][0]["text"], text.substr(0, text.find(stop)));
    EXPECT_EQ(r2["choices"][0]["finish_reason"], "stop");
    body["stream"] = true;
    auto res = f.Client().Post("/v1/completions", body.dump(), "application/json");
    std::string joined;
    for (const auto& e : SseEvents(res->body)) {
      if (e == "[DONE]") break;
      const json chunk = json::parse(e);
      for (const json& c : chunk["choices"]) joined += c["text"].get<std::string>();
    }
    EXPECT_EQ(joined, r2["choices"][0]["text"]);
    body.erase("stream");
    body.erase("stop");
  }
  body["echo"] = true;
  body["logprobs"] = 3;
  auto [s3, r3] = f.Post("/v1/completions", body.dump());
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(r3["choices"][0]["text"], "Hello, how are" + text);
  const json& lp = r3["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), r3["usage"]["completion_tokens"].get<size_t>() -
                                     (r3["choices"][0]["finish_reason"] == "stop" ? 1 : 0));
  for (const json& top : lp["top_logprobs"]) EXPECT_LE(top.size(), 3u);

  json chat = ChatBody({{"logprobs", true}, {"top_logprobs", 2}, {"reasoning_format", "none"}});
  auto [s4, r4] = f.Post("/v1/chat/completions", chat.dump());
  ASSERT_EQ(s4, 200);
  std::string bytes;
  for (const json& item : r4["choices"][0]["logprobs"]["content"]) {
    EXPECT_LE(item["logprob"].get<double>(), 0.0);
    EXPECT_LE(item["top_logprobs"].size(), 2u);
    for (int b : item["bytes"]) bytes += static_cast<char>(b);
  }
  // The bytes rebuild the text exactly; the random model may emit byte sequences that are not
  // UTF-8, which the text shows as U+FFFD.
  const std::string content = r4["choices"][0]["message"]["content"];
  if (content.find("\xEF\xBF\xBD") == std::string::npos) {
    EXPECT_EQ(bytes, content);
  }
}

TEST(Api, LogitBiasForcesAndBansTokens) {
  auto& f = Shared();
  // A token the random model would rarely pick: a +100 bias makes every sampled token it, at any
  // temperature; a -100 bias on the greedy first token changes the greedy first token.
  const int32_t forced = f.tokenizer.Encode("Z", false).at(0);
  json body = {{"model", "tiny-r1"},
               {"prompt", "Hello, how are"},
               {"max_tokens", 5},
               {"temperature", 1},
               {"logit_bias", {{std::to_string(forced), 100}}},
               {"logprobs", 0}};
  auto [status, r] = f.Post("/v1/completions", body.dump());
  ASSERT_EQ(status, 200) << r;
  for (const json& token : r["choices"][0]["logprobs"]["tokens"]) EXPECT_EQ(token, "Z");

  json greedy = {{"model", "tiny-r1"},
                 {"prompt", "Hello, how are"},
                 {"max_tokens", 1},
                 {"temperature", 0},
                 {"logprobs", 0}};
  auto [s1, plain] = f.Post("/v1/completions", greedy.dump());
  ASSERT_EQ(s1, 200) << plain;
  const std::string first = plain["choices"][0]["logprobs"]["tokens"][0];
  const std::vector<int32_t> first_ids = f.tokenizer.Encode(first, false);
  ASSERT_EQ(first_ids.size(), 1u) << first;
  greedy["logit_bias"] = {{std::to_string(first_ids[0]), -100}};
  auto [s2, banned] = f.Post("/v1/completions", greedy.dump());
  ASSERT_EQ(s2, 200) << banned;
  EXPECT_NE(banned["choices"][0]["logprobs"]["tokens"][0], first);
}

struct BadCase {
  std::string name;
  json body;
  int status;
  std::string code;
  std::string param;  // empty: null
};

TEST(Api, BadRequestsGetOpenAIErrors) {
  auto& f = Shared();
  const json user = {{{"role", "user"}, {"content", "hi"}}};
  const json weather_tool = {
      {{"type", "function"},
       {"function", {{"name", "get_weather"}, {"parameters", json::object()}}}}};
  std::vector<BadCase> cases = {
      {"messages empty",
       {{"model", "tiny-r1"}, {"messages", json::array()}},
       400,
       "invalid_value",
       "messages"},
      {"no messages", {{"model", "tiny-r1"}}, 400, "invalid_value", "messages"},
      {"no model", {{"messages", user}}, 400, "invalid_value", "model"},
      {"unknown model", {{"model", "gpt-9"}, {"messages", user}}, 404, "model_not_found", "model"},
      {"temperature 5", ChatBody({{"temperature", 5}}), 400, "invalid_value", "temperature"},
      {"temperature string", ChatBody({{"temperature", "hot"}}), 400, "invalid_value",
       "temperature"},
      {"top_p 1.5", ChatBody({{"top_p", 1.5}}), 400, "invalid_value", "top_p"},
      {"top_logprobs alone", ChatBody({{"top_logprobs", 2}}), 400, "invalid_value", "top_logprobs"},
      {"top_logprobs 21", ChatBody({{"logprobs", true}, {"top_logprobs", 21}}), 400,
       "invalid_value", "top_logprobs"},
      {"stream_options alone", ChatBody({{"stream_options", {{"include_usage", true}}}}), 400,
       "invalid_value", "stream_options"},
      {"n 0", ChatBody({{"n", 0}}), 400, "invalid_value", "n"},
      {"n over parallel", ChatBody({{"n", 50}}), 400, "invalid_value", "n"},
      {"max_tokens 0", ChatBody({{"max_tokens", 0}}), 400, "invalid_value", "max_tokens"},
      {"max_tokens float", ChatBody({{"max_tokens", 2.5}}), 400, "invalid_value", "max_tokens"},
      {"stop number", ChatBody({{"stop", 5}}), 400, "invalid_value", "stop"},
      {"17 stops", ChatBody({{"stop", json(std::vector<std::string>(17, "x"))}}), 400,
       "invalid_value", "stop"},
      {"penalty 3", ChatBody({{"presence_penalty", 3}}), 400, "invalid_value", "presence_penalty"},
      {"bad role", ChatBody({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400,
       "invalid_value", "messages[0].role"},
      {"image part",
       ChatBody({{"messages",
                  {{{"role", "user"},
                    {"content", {{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}}}}}}}),
       400, "invalid_value", "messages[0].content[0].type"},
      {"user without content", ChatBody({{"messages", {{{"role", "user"}}}}}), 400, "invalid_value",
       "messages[0].content"},
      {"tools empty", ChatBody({{"tools", json::array()}}), 400, "invalid_value", "tools"},
      {"tool_choice without tools", ChatBody({{"tool_choice", "auto"}}), 400, "invalid_value",
       "tool_choice"},
      {"tool_choice names absent tool",
       ChatBody({{"tools", weather_tool},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
       400, "invalid_value", "tool_choice"},
      {"bad tool name",
       ChatBody({{"tools", {{{"type", "function"}, {"function", {{"name", "a b"}}}}}}}), 400,
       "invalid_value", "tools[0].function.name"},
      {"unknown tool_call_id",
       ChatBody({{"messages",
                  {{{"role", "user"}, {"content", "x"}},
                   {{"role", "tool"}, {"content", "1"}, {"tool_call_id", "call_x"}}}}}),
       400, "invalid_value", "messages[1].tool_call_id"},
      {"logit_bias not an object", ChatBody({{"logit_bias", 5}}), 400, "invalid_value",
       "logit_bias"},
      {"logit_bias id not a number", ChatBody({{"logit_bias", {{"abc", 1}}}}), 400, "invalid_value",
       "logit_bias"},
      {"logit_bias id outside vocab", ChatBody({{"logit_bias", {{"999999", 1}}}}), 400,
       "invalid_value", "logit_bias"},
      {"logit_bias 101", ChatBody({{"logit_bias", {{"5", 101}}}}), 400, "invalid_value",
       "logit_bias"},
      {"json_object format", ChatBody({{"response_format", {{"type", "json_object"}}}}), 400,
       "invalid_value", "response_format.type"},
      {"context overflow", ChatBody({{"max_tokens", 100000}}), 400, "context_length_exceeded",
       "messages"},
      {"prompt too long",
       ChatBody({{"messages", {{{"role", "user"}, {"content", std::string(3000, 'x')}}}}}), 400,
       "context_length_exceeded", "messages"},
  };
  for (const BadCase& c : cases) {
    const auto [status, r] = f.Post("/v1/chat/completions", c.body.dump());
    EXPECT_EQ(status, c.status) << c.name << ": " << r;
    ASSERT_TRUE(r.is_object() && r.contains("error")) << c.name << ": " << r;
    const json& e = r["error"];
    EXPECT_EQ(e["code"], c.code) << c.name;
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << c.name;
    EXPECT_TRUE(e["type"].is_string()) << c.name;
    EXPECT_EQ(e["param"], c.param.empty() ? json(nullptr) : json(c.param)) << c.name;
  }
  const auto [s1, overflow] =
      f.Post("/v1/chat/completions", ChatBody({{"max_tokens", 100000}}).dump());
  EXPECT_EQ(overflow["error"]["message"].get<std::string>().rfind(
                "This model's maximum context length is 256 tokens.", 0),
            0u);
  // Malformed JSON, and a body that is not an object.
  for (const std::string body : {"{\"model\": ", "[1,2]", "", "\xff\xfe"}) {
    const auto [status, r] = f.Post("/v1/chat/completions", body);
    EXPECT_EQ(status, 400) << body;
    EXPECT_EQ(r["error"]["code"], "invalid_json") << body;
  }
  // Unknown fields are accepted, as are the reasoning fields of earlier turns.
  json extra = ChatBody({{"max_tokens", 2}, {"some_vendor_flag", {1, 2}}, {"user", "u1"}});
  extra["messages"] = {{{"role", "user"}, {"content", "a"}},
                       {{"role", "assistant"}, {"content", "b"}, {"reasoning_content", "r"}},
                       {{"role", "user"}, {"content", "c"}}};
  EXPECT_EQ(f.Post("/v1/chat/completions", extra.dump()).first, 200);
  // A tool round trip is accepted.
  json tool_turn = ChatBody({{"max_tokens", 2}, {"tools", weather_tool}});
  tool_turn["messages"] = {
      {{"role", "user"}, {"content", "weather?"}},
      {{"role", "assistant"},
       {"content", nullptr},
       {"tool_calls",
        {{{"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}}}},
      {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}};
  EXPECT_EQ(f.Post("/v1/chat/completions", tool_turn.dump()).first, 200);
}

TEST(Api, ApiKeyAndBodyLimit) {
  ServerOptions options;
  options.api_keys = {"secret-key"};
  options.max_body_bytes = 4096;
  ServeFixture f(options, 2, 128);
  const std::string body = ChatBody({{"max_tokens", 2}}).dump();
  auto [s1, r1] = f.Post("/v1/chat/completions", body);
  EXPECT_EQ(s1, 401);
  EXPECT_EQ(r1["error"]["code"], "invalid_api_key");
  auto [s2, r2] = f.Post("/v1/chat/completions", body, {{"Authorization", "Bearer wrong-key!"}});
  EXPECT_EQ(s2, 401);
  auto [s3, r3] = f.Post("/v1/chat/completions", body, {{"Authorization", "Bearer secret-key"}});
  EXPECT_EQ(s3, 200) << r3;
  EXPECT_EQ(f.Client().Get("/health")->status, 200);  // public
  EXPECT_EQ(f.Client().Get("/v1/models")->status, 401);
  auto [s4, r4] = f.Post("/v1/chat/completions", std::string(10000, ' '),
                         {{"Authorization", "Bearer secret-key"}});
  EXPECT_EQ(s4, 413);
  EXPECT_TRUE(r4.is_object() && r4.contains("error")) << r4;
}

}  // namespace
}  // namespace whale

namespace whale {
namespace {

// Forced tool calls through the API: a named or required tool_choice returns one call of an
// allowed tool with JSON object arguments (the random model alone never would), streamed as
// OpenAI tool_call deltas that add up to the non-streaming call.
TEST(Api, ForcedToolCallsPlainAndStreamed) {
  auto& f = Shared();
  const json city = {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}};
  const json tools = {
      {{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", city}}}},
      {{"type", "function"}, {"function", {{"name", "get_time"}, {"parameters", city}}}}};
  for (const json& choice :
       {json("required"), json{{"type", "function"}, {"function", {{"name", "get_time"}}}}}) {
    for (int seed = 1; seed <= 3; ++seed) {
      const json body = ChatBody({{"tools", tools},
                                  {"tool_choice", choice},
                                  {"temperature", 1},
                                  {"seed", seed},
                                  {"max_tokens", 60}});
      const auto [status, r] = f.Post("/v1/chat/completions", body.dump());
      ASSERT_EQ(status, 200) << r.dump();
      const json& c = r["choices"][0];
      EXPECT_EQ(c["finish_reason"], "tool_calls");
      EXPECT_TRUE(c["message"]["content"].is_null());
      ASSERT_EQ(c["message"]["tool_calls"].size(), 1u) << r.dump();
      const json& call = c["message"]["tool_calls"][0];
      const std::string name = call["function"]["name"];
      if (choice.is_object())
        EXPECT_EQ(name, "get_time");
      else
        EXPECT_TRUE(name == "get_time" || name == "get_weather") << name;
      const json args =
          json::parse(call["function"]["arguments"].get<std::string>(), nullptr, false);
      EXPECT_TRUE(args.is_object()) << call.dump();
      EXPECT_LE(r["usage"]["completion_tokens"].get<int>(), 60);

      json streamed = body;
      streamed["stream"] = true;
      auto res = f.Client().Post("/v1/chat/completions", streamed.dump(), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      std::string arguments, finish;
      int firsts = 0;
      for (const std::string& e : SseEvents(res->body)) {
        if (e == "[DONE]") break;
        const json chunk = json::parse(e);
        for (const json& sc : chunk["choices"]) {
          if (!sc["finish_reason"].is_null()) finish = sc["finish_reason"];
          if (!sc["delta"].contains("tool_calls")) continue;
          for (const json& d : sc["delta"]["tool_calls"]) {
            EXPECT_EQ(d["index"], 0);
            if (d.contains("id")) {
              ++firsts;
              EXPECT_EQ(d["type"], "function");
              EXPECT_EQ(d["function"]["name"], name);
            }
            arguments += d["function"]["arguments"].get<std::string>();
          }
        }
      }
      EXPECT_EQ(firsts, 1);
      EXPECT_EQ(arguments, call["function"]["arguments"]) << "seed " << seed;
      EXPECT_EQ(finish, "tool_calls");
    }
  }
  const auto [status, r] =
      f.Post("/v1/chat/completions",
             ChatBody({{"tools", tools}, {"tool_choice", "required"}, {"max_tokens", 4}}).dump());
  EXPECT_EQ(status, 400);
  EXPECT_EQ(r["error"]["param"], "max_tokens") << r.dump();
}

}  // namespace
}  // namespace whale
