#include "tokenizer/chat_template.h"

#include <chrono>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_interpreter.h"
#include "tokenizer/jinja_parser.h"
#include "util/error.h"

namespace whale {

struct ChatTemplate::Program {
  jinja::StmtList statements;
};

namespace {

// whale's own rendering of the DeepSeek-V3 conversation format, used only for checkpoints without a
// chat template. It agrees with DeepSeek-V3's template on system prompts, user/assistant turns,
// tool outputs and assistant turns with two or more tool calls; unlike it, every tool-call turn
// gets its header and closing tokens, and every run of tool outputs opens with
// <｜tool▁outputs▁begin｜>. Content may also be a list of {"type": "text", "text": ...} parts.
const char kBuiltinDeepSeek[] = R"JINJA(
{%- macro text(content) -%}
  {%- if content is string -%}{{ content }}
  {%- elif content is iterable and content is not mapping -%}
    {%- for part in content if part is mapping and part.get('type') == 'text' -%}{{ part.get('text', '') }}{%- endfor -%}
  {%- endif -%}
{%- endmacro -%}
{%- set ns = namespace(system='', in_tool=false) -%}
{%- for message in messages if message['role'] == 'system' -%}
  {%- set ns.system = ns.system + ('' if loop.first else '\n\n') + text(message['content']) -%}
{%- endfor -%}
{{- bos_token ~ ns.system -}}
{%- for message in messages -%}
  {%- if message['role'] == 'user' -%}
    {%- set ns.in_tool = false -%}
    {{- '<｜User｜>' + text(message['content']) -}}
  {%- elif message['role'] == 'assistant' -%}
    {{- ('<｜tool▁outputs▁end｜>' if ns.in_tool else '<｜Assistant｜>') + text(message['content']) -}}
    {%- if message['tool_calls'] -%}
      {{- '<｜tool▁calls▁begin｜>' -}}
      {%- for call in message['tool_calls'] -%}
        {%- set function = call['function'] -%}
        {%- set arguments = function['arguments'] if function['arguments'] is string else function['arguments'] | tojson -%}
        {{- ('\n' if not loop.first else '') + '<｜tool▁call▁begin｜>' + call.get('type', 'function') + '<｜tool▁sep｜>' + function['name'] + '\n```json\n' + arguments + '\n```<｜tool▁call▁end｜>' -}}
      {%- endfor -%}
      {{- '<｜tool▁calls▁end｜>' -}}
    {%- endif -%}
    {{- '<｜end▁of▁sentence｜>' -}}
    {%- set ns.in_tool = false -%}
  {%- elif message['role'] == 'tool' -%}
    {{- ('\n<｜tool▁output▁begin｜>' if ns.in_tool else '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>') + text(message['content']) + '<｜tool▁output▁end｜>' -}}
    {%- set ns.in_tool = true -%}
  {%- endif -%}
{%- endfor -%}
{%- if ns.in_tool -%}{{- '<｜tool▁outputs▁end｜>' -}}{%- endif -%}
{%- if add_generation_prompt and not ns.in_tool -%}{{- '<｜Assistant｜>' -}}{%- endif -%}
)JINJA";

std::tm LocalNow() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&t, &local);
  return local;
}

std::shared_ptr<const ChatTemplate::Program> Compile(const std::string& source,
                                                     const std::string& origin) {
  auto program = std::make_shared<ChatTemplate::Program>();
  try {
    program->statements = jinja::Parse(source);
  } catch (const jinja::TemplateError& e) {
    throw jinja::TemplateError(Cat(origin, ": chat_template: ", e.what()));
  }
  return program;
}
}  // namespace

const std::string& ChatTemplate::BuiltinDeepSeekSource() {
  static const std::string source =
      std::string(kBuiltinDeepSeek).substr(1);  // drop the leading newline
  return source;
}

ChatTemplate ChatTemplate::FromSource(
    const std::string& source, const std::string& origin,
    std::vector<std::pair<std::string, std::string>> special_tokens) {
  ChatTemplate t;
  t.origin_ = origin;
  t.special_tokens_ = std::move(special_tokens);
  t.templates_.emplace_back("default", Compile(source, origin));
  return t;
}

ChatTemplate ChatTemplate::BuiltinDeepSeek(
    std::vector<std::pair<std::string, std::string>> special_tokens) {
  if (special_tokens.empty()) {
    special_tokens = {{"bos_token", "<｜begin▁of▁sentence｜>"},
                      {"eos_token", "<｜end▁of▁sentence｜>"}};
  }
  ChatTemplate t = FromSource(BuiltinDeepSeekSource(), "whale's built-in DeepSeek-V3 chat format",
                              std::move(special_tokens));
  t.builtin_ = true;
  return t;
}

ChatTemplate ChatTemplate::FromConfig(const TokenizerConfig& config, const std::string& model) {
  if (config.chat_templates.empty()) {
    ChatTemplate t = BuiltinDeepSeek(config.special_tokens);
    t.origin_ = Cat("whale's built-in DeepSeek-V3 chat format (", model, " has no chat_template)");
    t.additional_special_tokens_ = config.additional_special_tokens;
    return t;
  }
  ChatTemplate t;
  t.origin_ = config.chat_template_source.empty() ? model : config.chat_template_source;
  t.special_tokens_ = config.special_tokens;
  t.additional_special_tokens_ = config.additional_special_tokens;
  for (const auto& [name, source] : config.chat_templates) {
    std::string origin =
        config.chat_templates.size() > 1 ? Cat(t.origin_, " (template '", name, "')") : t.origin_;
    t.templates_.emplace_back(name, Compile(source, origin));
  }
  return t;
}

ChatTemplate ChatTemplate::FromModelDir(const std::string& dir) {
  return FromConfig(TokenizerConfig::FromModelDir(dir), dir);
}

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& [name, program] : templates_) out.push_back(name);
  return out;
}

std::string ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                 const Options& options) const {
  if (!messages.is_array()) {
    Fail("chat messages: expected a JSON array of messages, found ", messages.type_name());
  }
  if (!options.tools.is_null() && !options.tools.is_array()) {
    Fail("chat tools: expected a JSON array or null, found ", options.tools.type_name());
  }
  if (!options.extra.is_object()) Fail("chat template variables: expected a JSON object");

  // Template choice as transformers makes it: "tool_use" when tools are given and it exists,
  // otherwise "default" (or the only template).
  const Program* program = nullptr;
  bool has_tools = options.tools.is_array() && !options.tools.empty();
  for (const auto& [name, p] : templates_) {
    if (name == "tool_use" && has_tools) program = p.get();
  }
  if (!program) {
    for (const auto& [name, p] : templates_) {
      if (name == "default") program = p.get();
    }
  }
  if (!program && templates_.size() == 1) program = templates_[0].second.get();
  if (!program) Fail(origin_, ": several chat templates and none is named 'default'");

  jinja::Dict variables;
  for (const auto& [name, token] : special_tokens_)
    variables.Set(jinja::Value(name), jinja::Value(token));
  if (!additional_special_tokens_.empty()) {
    jinja::ValueList list;
    for (const auto& token : additional_special_tokens_) list.emplace_back(token);
    variables.Set(jinja::Value("additional_special_tokens"), jinja::Value::List(std::move(list)));
  }
  for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
    variables.Set(jinja::Value(it.key()), jinja::Value::FromJson(it.value()));
  }
  variables.Set(jinja::Value("messages"), jinja::Value::FromJson(messages));
  variables.Set(jinja::Value("tools"), jinja::Value::FromJson(options.tools));
  variables.Set(jinja::Value("documents"), jinja::Value::None());
  variables.Set(jinja::Value("add_generation_prompt"), jinja::Value(options.add_generation_prompt));

  std::optional<std::tm> now = options.now;
  jinja::Dict globals = jinja::MakeGlobals([now] { return now ? *now : LocalNow(); });
  try {
    return jinja::Render(program->statements, globals, variables);
  } catch (const jinja::TemplateRaised& e) {
    throw jinja::TemplateRaised(
        Cat(origin_, ": the chat template rejected the conversation: ", e.what()));
  } catch (const jinja::TemplateError& e) {
    throw jinja::TemplateError(Cat(origin_, ": chat_template: ", e.what()));
  }
}

std::string ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt) const {
  Options options;
  options.add_generation_prompt = add_generation_prompt;
  return Render(messages, options);
}

std::string ChatTemplate::Render(const nlohmann::json& messages, bool add_generation_prompt) const {
  return Render(nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt);
}

}  // namespace whale
