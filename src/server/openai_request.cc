#include "server/openai_request.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "server/api_error.h"

namespace whale {
namespace {

using Json = nlohmann::ordered_json;

const char* TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

[[noreturn]] void BadType(const std::string& param, const Json& v, const char* expected) {
  throw ApiError::InvalidValue(param, param + " must be " + expected + ", got " + TypeName(v));
}

// The field, or nullptr when it is absent or null (null means "default" in the OpenAI API).
const Json* Field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::optional<bool> GetBool(const Json& object, const char* key) {
  const Json* v = Field(object, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) BadType(key, *v, "a boolean");
  return v->get<bool>();
}

std::optional<double> GetNumber(const Json& object, const char* key, double lo, double hi) {
  const Json* v = Field(object, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) BadType(key, *v, "a number");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    throw ApiError::InvalidValue(key, std::string(key) + " must be in [" + Json(lo).dump() + ", " +
                                          Json(hi).dump() + "], got " + v->dump());
  return x;
}

std::optional<int64_t> GetInt(const Json& object, const char* key, int64_t lo, int64_t hi) {
  const Json* v = Field(object, key);
  if (!v) return std::nullopt;
  if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
      std::fabs(v->get<double>()) < 9e15)
    return GetInt(Json{{key, static_cast<int64_t>(v->get<double>())}}, key, lo, hi);
  if (!v->is_number_integer()) BadType(key, *v, "an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    throw ApiError::InvalidValue(
        key, std::string(key) + " must be at most " + std::to_string(hi) + ", got " + v->dump());
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw ApiError::InvalidValue(key, std::string(key) + " must be in [" + std::to_string(lo) +
                                          ", " + std::to_string(hi) + "], got " + v->dump());
  return x;
}

std::optional<std::string> GetString(const Json& object, const char* key) {
  const Json* v = Field(object, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) BadType(key, *v, "a string");
  return v->get<std::string>();
}

// Rejects bodies nested deeper than `max_depth` before parsing them (a guard for the recursive
// parts of the JSON library).
void CheckDepth(const std::string& body, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw ApiError(
            400, "invalid_request_error", "invalid_json", std::nullopt,
            "the request body nests JSON deeper than " + std::to_string(max_depth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// OpenAI accepts up to 300 biased tokens per request.
constexpr size_t kMaxLogitBias = 300;

Json ParseBody(const std::string& body, const RequestLimits& limits) {
  CheckDepth(body, limits.max_depth);
  Json root = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    throw ApiError(400, "invalid_request_error", "invalid_json", std::nullopt,
                   "the request body is not valid JSON");
  if (!root.is_object())
    throw ApiError(400, "invalid_request_error", "invalid_json", std::nullopt,
                   std::string("the request body must be a JSON object, got ") + TypeName(root));
  return root;
}

// Fields shared by chat and completions.
void ParseCommon(const Json& root, ApiRequest& r, const RequestLimits& limits) {
  const Json* model = Field(root, "model");
  if (!model) throw ApiError::InvalidValue("model", "model is required");
  if (!model->is_string()) BadType("model", *model, "a string");
  r.model = model->get<std::string>();

  r.stream = GetBool(root, "stream").value_or(false);
  if (const Json* so = Field(root, "stream_options")) {
    if (!so->is_object()) BadType("stream_options", *so, "an object");
    if (!r.stream)
      throw ApiError::InvalidValue("stream_options",
                                   "stream_options is only allowed when stream is true");
    if (const Json* iu = Field(*so, "include_usage")) {
      if (!iu->is_boolean()) BadType("stream_options.include_usage", *iu, "a boolean");
      r.include_usage = iu->get<bool>();
    }
  }
  r.n = static_cast<int>(GetInt(root, "n", 1, 128).value_or(1));
  if (r.n > limits.max_n)
    throw ApiError::InvalidValue("n", "n = " + std::to_string(r.n) + " exceeds this server's " +
                                          std::to_string(limits.max_n) +
                                          " parallel sequences (--parallel)");
  const auto max_tokens = GetInt(root, "max_tokens", 1, int64_t{1} << 40);
  const auto max_completion = GetInt(root, "max_completion_tokens", 1, int64_t{1} << 40);
  r.max_tokens = max_completion ? max_completion : max_tokens;

  if (const Json* stop = Field(root, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > limits.max_stop)
        throw ApiError::InvalidValue("stop", "stop holds " + std::to_string(stop->size()) +
                                                 " strings; at most " +
                                                 std::to_string(limits.max_stop) + " are allowed");
      for (const Json& s : *stop) {
        if (!s.is_string()) BadType("stop", s, "a string or an array of strings");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      BadType("stop", *stop, "a string or an array of strings");
    }
    std::erase(r.stop, "");
  }

  SamplerConfig& s = r.sampling;
  s.temperature = static_cast<float>(GetNumber(root, "temperature", 0, 2).value_or(1.0));
  if (s.temperature < 1e-5f) s.temperature = 0;  // tiny temperatures are greedy, and stable
  s.top_p = static_cast<float>(GetNumber(root, "top_p", 0, 1).value_or(1.0));
  if (s.top_p == 0) {  // the OpenAI range allows 0: the single most likely token
    s.temperature = 0;
    s.top_p = 1;
  }
  const int64_t top_k = GetInt(root, "top_k", -1, int64_t{1} << 30).value_or(0);
  s.top_k = top_k < 0 ? 0 : static_cast<int32_t>(top_k);
  s.min_p = static_cast<float>(GetNumber(root, "min_p", 0, 1).value_or(0));
  s.repetition_penalty =
      static_cast<float>(GetNumber(root, "repetition_penalty", 1e-3, 100).value_or(1));
  s.presence_penalty = static_cast<float>(GetNumber(root, "presence_penalty", -2, 2).value_or(0));
  s.frequency_penalty = static_cast<float>(GetNumber(root, "frequency_penalty", -2, 2).value_or(0));
  s.seed = static_cast<uint64_t>(
      GetInt(root, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())
          .value_or(0));
  if (!Field(root, "seed")) {
    // Unseeded requests differ from each other, as OpenAI's do.
    static std::atomic<uint64_t> counter{0x5EED};
    s.seed = counter.fetch_add(0x9E3779B97F4A7C15ull);
  }
  GetString(root, "user");
  if (const Json* bias = Field(root, "logit_bias")) {
    if (!bias->is_object()) BadType("logit_bias", *bias, "an object");
    if (bias->size() > kMaxLogitBias)
      throw ApiError::InvalidValue(
          "logit_bias", "at most " + std::to_string(kMaxLogitBias) + " tokens may be biased");
    for (const auto& [key, value] : bias->items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id >= limits.vocab_size)
        throw ApiError::InvalidValue("logit_bias", "key '" + key + "' is not a token id in [0, " +
                                                       std::to_string(limits.vocab_size) + ")");
      if (!value.is_number() || !(value.get<double>() >= -100 && value.get<double>() <= 100))
        throw ApiError::InvalidValue("logit_bias", "bias of token " + key + " is " + value.dump() +
                                                       "; expected a number in [-100, 100]");
      s.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
    }
  }
}

std::string TextContent(const Json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) BadType(param, content, "a string or an array of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) BadType(p, part, "a content part object");
    const Json* type = Field(part, "type");
    if (!type || !type->is_string()) throw ApiError::InvalidValue(p + ".type", "missing part type");
    if (type->get<std::string>() != "text")
      throw ApiError::InvalidValue(p + ".type", "unsupported content part type '" +
                                                    type->get<std::string>() +
                                                    "': this model takes text only");
    const Json* t = Field(part, "text");
    if (!t || !t->is_string()) throw ApiError::InvalidValue(p + ".text", "text must be a string");
    if (!text.empty()) text += "\n";
    text += t->get<std::string>();
  }
  return text;
}

void ParseMessages(const Json& root, ApiRequest& r, const RequestLimits& limits) {
  const Json* messages = Field(root, "messages");
  if (!messages) throw ApiError::InvalidValue("messages", "messages is required");
  if (!messages->is_array()) BadType("messages", *messages, "an array");
  if (messages->empty())
    throw ApiError::InvalidValue("messages", "messages must hold at least one message");
  if (messages->size() > limits.max_messages)
    throw ApiError::InvalidValue("messages",
                                 "more than " + std::to_string(limits.max_messages) + " messages");
  std::vector<std::string> call_ids;  // from earlier assistant tool_calls
  r.messages = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) BadType(p, m, "an object");
    const Json* role_field = Field(m, "role");
    if (!role_field || !role_field->is_string())
      throw ApiError::InvalidValue(p + ".role", p + ".role must be a string");
    std::string role = role_field->get<std::string>();
    if (role == "developer") role = "system";
    if (role == "function") role = "tool";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw ApiError::InvalidValue(p + ".role", "unknown role '" + role +
                                                    "' (expected system, developer, user, "
                                                    "assistant or tool)");
    Json out = {{"role", role}};
    const Json* content = Field(m, "content");
    if (role == "assistant") {
      out["content"] = content ? Json(TextContent(*content, p + ".content")) : Json(nullptr);
      for (const char* key : {"reasoning_content", "reasoning"}) {
        if (const Json* rc = Field(m, key)) {
          if (!rc->is_string()) BadType(p + "." + key, *rc, "a string");
          out["reasoning_content"] = *rc;
        }
      }
      if (const Json* calls = Field(m, "tool_calls")) {
        if (!calls->is_array()) BadType(p + ".tool_calls", *calls, "an array");
        Json list = Json::array();
        for (size_t c = 0; c < calls->size(); ++c) {
          const Json& call = (*calls)[c];
          const std::string cp = p + ".tool_calls[" + std::to_string(c) + "]";
          if (!call.is_object()) BadType(cp, call, "an object");
          const Json* fn = Field(call, "function");
          if (!fn || !fn->is_object())
            throw ApiError::InvalidValue(cp + ".function", "missing function");
          const Json* name = Field(*fn, "name");
          if (!name || !name->is_string())
            throw ApiError::InvalidValue(cp + ".function.name", "function.name must be a string");
          const Json* args = Field(*fn, "arguments");
          if (args && !args->is_string()) BadType(cp + ".function.arguments", *args, "a string");
          if (const Json* id = Field(call, "id")) {
            if (!id->is_string()) BadType(cp + ".id", *id, "a string");
            call_ids.push_back(id->get<std::string>());
          }
          list.push_back({{"type", "function"},
                          {"function", {{"name", *name}, {"arguments", args ? *args : Json("")}}}});
        }
        if (!list.empty()) out["tool_calls"] = list;
      }
    } else {
      if (!content) throw ApiError::InvalidValue(p + ".content", p + ".content is required");
      out["content"] = TextContent(*content, p + ".content");
      if (role == "tool") {
        const Json* id = Field(m, "tool_call_id");
        if (!id || !id->is_string())
          throw ApiError::InvalidValue(p + ".tool_call_id", "a tool message needs tool_call_id");
        const std::string value = id->get<std::string>();
        if (std::find(call_ids.begin(), call_ids.end(), value) == call_ids.end())
          throw ApiError::InvalidValue(p + ".tool_call_id",
                                       "tool_call_id '" + value +
                                           "' matches no tool_calls id of an earlier assistant "
                                           "message");
        out["tool_call_id"] = value;
      }
    }
    r.messages.push_back(std::move(out));
  }
}

bool ValidToolName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

void ParseTools(const Json& root, ApiRequest& r, const RequestLimits& limits) {
  std::vector<std::string> names;
  if (const Json* tools = Field(root, "tools")) {
    if (!tools->is_array()) BadType("tools", *tools, "an array");
    if (tools->empty()) throw ApiError::InvalidValue("tools", "tools must not be empty");
    if (tools->size() > limits.max_tools)
      throw ApiError::InvalidValue(
          "tools", "at most " + std::to_string(limits.max_tools) + " tools are allowed");
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string p = "tools[" + std::to_string(i) + "]";
      if (!t.is_object()) BadType(p, t, "an object");
      const Json* type = Field(t, "type");
      if (!type || *type != "function")
        throw ApiError::InvalidValue(p + ".type", "only tools of type 'function' are supported");
      const Json* fn = Field(t, "function");
      if (!fn || !fn->is_object())
        throw ApiError::InvalidValue(p + ".function", "missing function");
      const Json* name = Field(*fn, "name");
      if (!name || !name->is_string() || !ValidToolName(name->get<std::string>()))
        throw ApiError::InvalidValue(p + ".function.name",
                                     "function names are 1-64 characters of a-z, A-Z, 0-9, _ "
                                     "and -");
      if (const Json* params = Field(*fn, "parameters"); params && !params->is_object())
        BadType(p + ".function.parameters", *params, "an object");
      names.push_back(name->get<std::string>());
    }
    r.tools = *tools;
    r.tool_choice = "auto";
    r.tool_names = names;
  }
  if (const Json* choice = Field(root, "tool_choice")) {
    std::string value;
    if (choice->is_string()) {
      value = choice->get<std::string>();
      if (value != "none" && value != "auto" && value != "required")
        throw ApiError::InvalidValue("tool_choice",
                                     "tool_choice must be none, auto, required or "
                                     "a function, got '" +
                                         value + "'");
    } else if (choice->is_object()) {
      value = "function";
      const Json* fn = Field(*choice, "function");
      const Json* name = fn && fn->is_object() ? Field(*fn, "name") : nullptr;
      if (!name || !name->is_string())
        throw ApiError::InvalidValue("tool_choice.function.name", "missing function name");
      if (std::find(names.begin(), names.end(), name->get<std::string>()) == names.end())
        throw ApiError::InvalidValue(
            "tool_choice",
            "tool_choice names '" + name->get<std::string>() + "', which is not in tools");
      r.tool_choice_name = name->get<std::string>();
    } else {
      BadType("tool_choice", *choice, "a string or an object");
    }
    if (value != "none" && names.empty())
      throw ApiError::InvalidValue("tool_choice", "tool_choice needs tools");
    r.tool_choice = value;
  }
  r.parallel_tool_calls = GetBool(root, "parallel_tool_calls").value_or(true);
}

}  // namespace

ApiRequest ParseChatRequest(const std::string& body, const RequestLimits& limits) {
  const Json root = ParseBody(body, limits);
  ApiRequest r;
  r.chat = true;
  ParseCommon(root, r, limits);
  ParseMessages(root, r, limits);
  ParseTools(root, r, limits);
  r.logprobs = GetBool(root, "logprobs").value_or(false);
  if (const auto top = GetInt(root, "top_logprobs", 0, 20)) {
    if (!r.logprobs)
      throw ApiError::InvalidValue("top_logprobs",
                                   "when using top_logprobs, logprobs must be set to true");
    r.top_logprobs = static_cast<int>(*top);
  }
  if (const Json* format = Field(root, "response_format")) {
    const Json* type = format->is_object() ? Field(*format, "type") : nullptr;
    if (!type || !type->is_string())
      throw ApiError::InvalidValue("response_format", "response_format needs a type");
    if (*type != "text")
      throw ApiError::InvalidValue("response_format.type",
                                   "response_format " + type->get<std::string>() +
                                       " is not supported (no constrained decoding); use text");
  }
  if (auto separate = GetBool(root, "separate_reasoning")) r.raw_reasoning = !*separate;
  if (auto format = GetString(root, "reasoning_format")) {
    if (*format == "none" || *format == "raw")
      r.raw_reasoning = true;
    else if (*format == "deepseek")
      r.raw_reasoning = false;
    else
      throw ApiError::InvalidValue("reasoning_format",
                                   "reasoning_format must be deepseek or none, "
                                   "got '" +
                                       *format + "'");
  }
  if (const Json* kwargs = Field(root, "chat_template_kwargs")) {
    if (!kwargs->is_object()) BadType("chat_template_kwargs", *kwargs, "an object");
    r.template_kwargs = *kwargs;
  }
  if (const Json* thinking = Field(root, "thinking")) {
    const Json* type = thinking->is_object() ? Field(*thinking, "type") : nullptr;
    if (!type || (*type != "enabled" && *type != "disabled"))
      throw ApiError::InvalidValue("thinking.type", "thinking.type must be enabled or disabled");
    r.template_kwargs["thinking"] = *type == "enabled";
  }
  return r;
}

ApiRequest ParseCompletionRequest(const std::string& body, const RequestLimits& limits) {
  const Json root = ParseBody(body, limits);
  ApiRequest r;
  r.chat = false;
  ParseCommon(root, r, limits);
  if (!r.max_tokens) r.max_tokens = 16;  // the legacy endpoint's default
  const Json* prompt = Field(root, "prompt");
  if (!prompt) throw ApiError::InvalidValue("prompt", "prompt is required");
  const Json* single = prompt;
  if (prompt->is_array() && !prompt->empty() && !(*prompt)[0].is_number_integer()) {
    if (prompt->size() != 1)
      throw ApiError::InvalidValue("prompt", "this server takes one prompt per request");
    single = &(*prompt)[0];
  }
  if (single->is_string()) {
    r.prompt = single->get<std::string>();
  } else if (single->is_array() && !single->empty()) {
    r.prompt_is_tokens = true;
    for (const Json& t : *single) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= limits.vocab_size)
        throw ApiError::InvalidValue("prompt", "token-id prompts hold integers in [0, " +
                                                   std::to_string(limits.vocab_size) + "), got " +
                                                   t.dump());
      r.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  } else {
    BadType("prompt", *single, "a string, an array of token ids, or a one-string array");
  }
  if (Field(root, "suffix"))
    throw ApiError::InvalidValue("suffix", "suffix (fill-in-the-middle) is not supported");
  if (auto best_of = GetInt(root, "best_of", 1, 128); best_of && *best_of != r.n)
    throw ApiError::InvalidValue("best_of", "best_of other than n is not supported");
  r.echo = GetBool(root, "echo").value_or(false);
  if (const auto lp = GetInt(root, "logprobs", 0, 5)) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int>(*lp);
  }
  r.raw_reasoning = true;
  return r;
}

}  // namespace whale
