// whale chat: a terminal chat with a checkpoint (the embedded whale-tiny-r1 by default). Each turn
// renders the whole conversation with the model's chat template and streams the reply as it is
// sampled: the reasoning dimmed, then the answer.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "command.h"
#include "embedded_model.h"
#include "io/mapped_file.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/chat_output.h"
#include "runtime/generator.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

constexpr const char* kDim = "\x1b[2m";
constexpr const char* kReset = "\x1b[0m";

struct ChatFlags {
  std::string model;
  std::string prompt;
  std::string system;
  float temperature = 0.6f;
  float top_p = 0.95f;
  uint64_t seed = 0;
  int64_t max_tokens = 1024;
  int64_t context = 4096;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::string color = "auto";
  CLI::Option* temperature_option = nullptr;
  CLI::Option* top_p_option = nullptr;
};

// The sampling settings: generation_config.json's when the model has one (do_sample false means
// greedy), else temperature 0.6 and top_p 0.95 (DeepSeek-R1's recommendation); flags override.
whale::SamplerConfig Sampling(const ChatFlags& f, const std::string& dir) {
  whale::SamplerConfig s;
  s.temperature = 0.6f;
  s.top_p = 0.95f;
  const std::filesystem::path path = std::filesystem::path(dir) / "generation_config.json";
  if (std::filesystem::exists(path)) {
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(whale::ReadTextFile(path.string()));
    } catch (const nlohmann::json::exception& e) {
      whale::Fail(path.string(), ": not valid JSON: ", e.what());
    }
    auto number = [&](const char* key, float& into) {
      if (!config.contains(key) || config[key].is_null()) return;
      if (!config[key].is_number())
        whale::Fail(path.string(), ": ", key, " must be a number, got ", config[key].dump());
      into = config[key].get<float>();
    };
    number("temperature", s.temperature);
    number("top_p", s.top_p);
    if (config.contains("do_sample")) {
      if (!config["do_sample"].is_boolean())
        whale::Fail(path.string(), ": do_sample must be true or false, got ",
                    config["do_sample"].dump());
      if (!config["do_sample"].get<bool>()) s.temperature = 0.0f;
    }
  }
  if (f.temperature_option->count() > 0) s.temperature = f.temperature;
  if (f.top_p_option->count() > 0) s.top_p = f.top_p;
  s.seed = f.seed;
  s.Validate();
  return s;
}

// Writes one reply's channels to stdout: the reasoning dimmed (or, without color, between
// <think> and </think> lines so it stays distinguishable), then the answer.
class ReplyPrinter {
 public:
  explicit ReplyPrinter(bool color) : color_(color) {}

  void Print(const whale::ChatDelta& delta) {
    if (!delta.reasoning.empty()) {
      if (!in_reasoning_ && !answered_) {
        std::fputs(color_ ? kDim : "<think>\n", stdout);
        in_reasoning_ = true;
        // The model's reasoning usually starts on a new line already.
        Write(TrimLeading(delta.reasoning));
      } else if (in_reasoning_) {
        Write(delta.reasoning);
      }
    }
    if (!delta.content.empty()) {
      std::string text = delta.content;
      if (!answered_) {
        CloseReasoning();
        text = std::string(TrimLeading(text));
        if (text.empty()) return;
        answered_ = true;
      }
      answer_ += text;
      Write(text);
    }
    std::fflush(stdout);
  }

  void End() {
    CloseReasoning();
    if (last_ != '\n') std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  const std::string& answer() const { return answer_; }

 private:
  static std::string_view TrimLeading(std::string_view text) {
    const size_t start = text.find_first_not_of(" \t\r\n");
    return start == std::string_view::npos ? std::string_view() : text.substr(start);
  }

  void Write(std::string_view text) {
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    last_ = text.back();
  }

  void CloseReasoning() {
    if (!in_reasoning_) return;
    in_reasoning_ = false;
    // Trailing newlines of the reasoning are printed already; one blank line before the answer.
    if (last_ != '\n') std::fputc('\n', stdout);
    std::fputs(color_ ? kReset : "</think>\n", stdout);
    std::fputc('\n', stdout);
    last_ = '\n';
  }

  bool color_;
  bool in_reasoning_ = false;
  bool answered_ = false;
  char last_ = '\n';
  std::string answer_;
};

class Chat {
 public:
  Chat(const ChatFlags& f, const std::string& dir)
      : flags_(f),
        dir_(dir),
        tokenizer_(whale::Tokenizer::FromModelDir(dir)),
        template_(whale::ChatTemplate::FromModelDir(dir)),
        weights_(whale::Weights::Load(dir)),
        pool_(f.threads) {
    const whale::ModelConfig& config = weights_.config();
    if (tokenizer_.vocab_size() > config.vocab_size)
      whale::Fail(dir, ": the tokenizer has ", tokenizer_.vocab_size(),
                  " tokens but config.json's vocab_size is ", config.vocab_size);
    context_ = f.context;
    if (config.max_position_embeddings > 0)
      context_ = std::min(context_, config.max_position_embeddings);
    whale::ModelOptions options;
    options.max_context = context_;
    model_.emplace(weights_, pool_, options);
    generator_.emplace(*model_, context_);
    generation_.max_tokens = f.max_tokens;
    generation_.sampling = Sampling(f, dir);
    for (int64_t eos : config.eos_token_ids)
      generation_.stop_tokens.push_back(static_cast<int32_t>(eos));
    if (auto eos = tokenizer_.eos_id();
        eos && std::find(generation_.stop_tokens.begin(), generation_.stop_tokens.end(), *eos) ==
                   generation_.stop_tokens.end())
      generation_.stop_tokens.push_back(*eos);
    if (generation_.stop_tokens.empty())
      whale::Fail(dir,
                  ": no EOS token (config.json eos_token_id or tokenizer_config.json "
                  "eos_token), so a reply could never end");
    color_ = f.color == "always" || (f.color == "auto" && isatty(fileno(stdout)));
  }

  const whale::SamplerConfig& sampling() const { return generation_.sampling; }
  int64_t context() const { return context_; }
  void Reset() { history_ = nlohmann::ordered_json::array(); }

  // One user message in, one streamed reply out (kept in the history without its reasoning).
  void Turn(const std::string& message) {
    history_.push_back({{"role", "user"}, {"content", message}});
    std::string text;
    std::vector<int32_t> prompt;
    // Leave at least a quarter of the context (or max_tokens) for the reply; drop the oldest
    // exchanges until the conversation fits.
    const int64_t reply_room = std::min<int64_t>(flags_.max_tokens, context_ / 4);
    for (;;) {
      text = Render();
      prompt = tokenizer_.Encode(text, /*add_special_tokens=*/false);
      if (static_cast<int64_t>(prompt.size()) + reply_room <= context_) break;
      if (history_.size() <= 1) {
        history_.erase(history_.begin());
        whale::Fail("the message is ", prompt.size(), " tokens with the template; the context is ",
                    context_, " (--ctx) and the reply needs room too");
      }
      history_.erase(history_.begin(), history_.begin() + 2);  // the oldest user + assistant
      std::fprintf(stderr, "(the oldest exchange was dropped to fit the context)\n");
    }
    whale::GenerationOptions options = generation_;
    options.max_tokens =
        std::min<int64_t>(flags_.max_tokens, context_ - static_cast<int64_t>(prompt.size()));
    whale::ChatOutputOptions parse;
    // R1 templates end the prompt inside an opened <think>.
    const size_t end = text.find_last_not_of(" \t\r\n");
    parse.start_in_reasoning =
        end != std::string::npos && end + 1 >= 7 && text.compare(end + 1 - 7, 7, "<think>") == 0;
    parse.parse_tool_calls = false;
    parse.id_seed = 1;
    whale::ChatOutputParser parser(parse);
    whale::StreamDecoder decoder(tokenizer_);
    ReplyPrinter printer(color_);
    const auto& stops = options.stop_tokens;
    const whale::GenerationResult result =
        generator_->Generate(prompt, options, [&](int32_t token) {
          if (std::find(stops.begin(), stops.end(), token) != stops.end()) return true;
          printer.Print(parser.Feed(decoder.Next(token)));
          return true;
        });
    printer.Print(parser.Feed(decoder.Finish()));
    printer.Print(parser.Finish());
    printer.End();
    history_.push_back({{"role", "assistant"}, {"content", printer.answer()}});
    std::fprintf(stderr, "%s[%zu tokens, %.1f tok/s; prompt %lld tokens, %.0f tok/s%s]%s\n",
                 color_ ? kDim : "", result.tokens.size(), result.decode_tokens_per_second(),
                 static_cast<long long>(result.prompt_tokens), result.prefill_tokens_per_second(),
                 result.finish == whale::FinishReason::kStopToken
                     ? ""
                     : (std::string("; stopped: ") + whale::FinishReasonName(result.finish) +
                        (result.finish == whale::FinishReason::kMaxTokens ? " (--max-tokens)" : ""))
                           .c_str(),
                 color_ ? kReset : "");
  }

 private:
  std::string Render() const {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!flags_.system.empty())
      messages.push_back({{"role", "system"}, {"content", flags_.system}});
    for (const auto& m : history_) messages.push_back(m);
    return template_.Render(messages, /*add_generation_prompt=*/true);
  }

  const ChatFlags& flags_;
  std::string dir_;
  whale::Tokenizer tokenizer_;
  whale::ChatTemplate template_;
  whale::Weights weights_;
  whale::ThreadPool pool_;
  int64_t context_ = 0;
  std::optional<whale::Model> model_;
  std::optional<whale::Generator> generator_;
  whale::GenerationOptions generation_;
  bool color_ = false;
  nlohmann::ordered_json history_ = nlohmann::ordered_json::array();
};

constexpr const char* kHelp =
    "  /reset  forget the conversation\n"
    "  /exit   quit (or end of input: Ctrl-D)\n"
    "  /help   this list\n";

int RunChat(const ChatFlags& f) {
  const std::string dir = whale::app::ModelDirOrEmbedded(f.model);
  Chat chat(f, dir);
  if (!f.prompt.empty()) {
    chat.Turn(f.prompt);
    return 0;
  }
  const bool interactive = isatty(fileno(stdin));
  if (interactive) {
    const whale::SamplerConfig& s = chat.sampling();
    std::fprintf(stderr, "whale chat: %s (context %lld, %s). /help for commands, Ctrl-D to quit.\n",
                 f.model.empty() ? "whale-tiny-r1 (embedded)" : dir.c_str(),
                 static_cast<long long>(chat.context()),
                 s.greedy() ? "greedy"
                            : ("temperature " + std::to_string(s.temperature).substr(0, 4) +
                               ", top_p " + std::to_string(s.top_p).substr(0, 4))
                                  .c_str());
  }
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs(">>> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    const std::string text = line.substr(start, line.find_last_not_of(" \t\r") - start + 1);
    if (text == "/exit" || text == "/quit") break;
    if (text == "/reset") {
      chat.Reset();
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (text == "/help") {
      std::fputs(kHelp, stderr);
      continue;
    }
    if (text[0] == '/') {
      std::fprintf(stderr, "unknown command %s\n%s", text.c_str(), kHelp);
      continue;
    }
    try {
      chat.Turn(text);
    } catch (const whale::Error& e) {
      // One message too long for the context ends that turn, not the session.
      std::fprintf(stderr, "whale: error: %s\n", e.what());
    }
  }
  if (interactive) std::fputc('\n', stdout);
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto f = std::make_shared<ChatFlags>();
  sub.add_option("--model", f->model, "model directory (HF layout; default: the embedded model)");
  sub.add_option("--prompt", f->prompt, "one message: print the reply and exit");
  sub.add_option("--system", f->system, "system prompt");
  f->temperature_option =
      sub.add_option("--temperature", f->temperature,
                     "temperature (default: generation_config.json, else 0.6; 0 = greedy)");
  f->top_p_option = sub.add_option("--top-p", f->top_p,
                                   "nucleus mass (default: generation_config.json, else 0.95)");
  sub.add_option("--seed", f->seed, "sampling seed")->capture_default_str();
  sub.add_option("--max-tokens", f->max_tokens, "tokens per reply at most")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub.add_option("--ctx", f->context, "context length (capped at the model's)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20))
      ->capture_default_str();
  sub.add_option("--threads", f->threads, "compute threads")->check(CLI::Range(1, 1024));
  sub.add_option("--color", f->color, "dim the reasoning: auto (when stdout is a terminal)")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  return [f] { return RunChat(*f); };
}

}  // namespace

WHALE_COMMAND(chat, "chat with a model (the embedded whale-tiny-r1 by default)", Setup);
