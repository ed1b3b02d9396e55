// whale chat-format: renders a conversation with the checkpoint's chat template (the prompt the
// model sees), exactly as transformers' apply_chat_template(tokenize=False) would.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "io/mapped_file.h"
#include "tokenizer/chat_template.h"
#include "util/error.h"

namespace {

struct ChatFormatFlags {
  std::string model;
  std::string messages;
  bool generation_prompt = false;
};

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<ChatFormatFlags>();
  sub.add_option("--model", flags->model, "model directory (tokenizer_config.json)")->required();
  sub.add_option(
         "--messages", flags->messages,
         "JSON file: an array of messages, or {\"messages\": [...], \"tools\": [...], other "
         "template variables}")
      ->required();
  sub.add_flag("--generation-prompt", flags->generation_prompt,
               "end with the assistant prefix (add_generation_prompt)");
  return [flags] {
    nlohmann::ordered_json input;
    try {
      input = nlohmann::ordered_json::parse(whale::ReadTextFile(flags->messages));
    } catch (const nlohmann::json::exception& e) {
      whale::Fail(flags->messages, ": not valid JSON: ", e.what());
    }
    whale::ChatTemplate::Options options;
    options.add_generation_prompt = flags->generation_prompt;
    nlohmann::ordered_json messages;
    if (input.is_array()) {
      messages = input;
    } else if (input.is_object() && input.contains("messages")) {
      for (auto it = input.begin(); it != input.end(); ++it) {
        if (it.key() == "messages") {
          messages = it.value();
        } else if (it.key() == "tools") {
          options.tools = it.value();
        } else if (it.key() == "add_generation_prompt") {
          if (!it.value().is_boolean())
            whale::Fail(flags->messages, ": add_generation_prompt must be true or false");
          options.add_generation_prompt = options.add_generation_prompt || it.value().get<bool>();
        } else {
          options.extra[it.key()] = it.value();
        }
      }
    } else {
      whale::Fail(flags->messages,
                  ": expected an array of messages or an object with a \"messages\" array");
    }
    whale::ChatTemplate chat = whale::ChatTemplate::FromModelDir(flags->model);
    if (chat.is_builtin()) std::fprintf(stderr, "whale: note: using %s\n", chat.origin().c_str());
    std::string prompt = chat.Render(messages, options);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    return 0;
  };
}

}  // namespace

// The subcommand name has a dash, so it registers without the WHALE_COMMAND macro.
static whale::app::Registrar chat_format_registrar(
    {"chat-format", Setup, "render a conversation (JSON) with the model's chat template"});
