// whale run: generate from a prompt with a DeepSeek-V2/V3 checkpoint and report speed.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "command.h"
#include "embedded_model.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/generator.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

struct RunFlags {
  std::string model;
  std::string prompt;
  std::string tokens;
  int64_t n = 64;
  whale::SamplerConfig sampling;
  std::string dump_logits;
  int64_t context = 0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int64_t batch = 256;
  bool naive = false;
};

std::vector<int32_t> ParseTokenList(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX)
      whale::Fail("--tokens: '", item,
                  "' is not a token id (expected non-negative integers "
                  "separated by commas)");
    ids.push_back(static_cast<int32_t>(value));
  }
  if (ids.empty()) whale::Fail("--tokens: no token ids given");
  return ids;
}

int Run(RunFlags& f) {
  f.model = whale::app::ModelDirOrEmbedded(f.model);
  if (f.prompt.empty() == f.tokens.empty())
    whale::Fail("give exactly one of --prompt TEXT or --tokens 1,2,3");
  // The tokenizer, when the checkpoint has one: --prompt needs it, and the output is text.
  std::optional<whale::Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(f.model) / "tokenizer.json"))
    tokenizer = whale::Tokenizer::FromModelDir(f.model);
  if (!f.prompt.empty() && !tokenizer)
    whale::Fail(f.model, ": no tokenizer.json, so --prompt cannot be encoded; use --tokens");
  // --prompt is encoded as the tokenizer does by default (BOS per tokenizer_config.json);
  // --tokens is fed exactly.
  const std::vector<int32_t> prompt =
      tokenizer && !f.prompt.empty() ? tokenizer->Encode(f.prompt) : ParseTokenList(f.tokens);
  if (prompt.empty()) whale::Fail("--prompt encodes to no tokens");

  const whale::Weights weights = whale::Weights::Load(f.model);
  const whale::ModelConfig& config = weights.config();
  const int64_t wanted = static_cast<int64_t>(prompt.size()) + (f.dump_logits.empty() ? f.n : 0);
  const int64_t context = f.context > 0 ? f.context : wanted;
  if (context < static_cast<int64_t>(prompt.size()))
    whale::Fail("--ctx ", context, " is shorter than the prompt (", prompt.size(), " tokens)");

  whale::ThreadPool pool(f.threads);
  whale::ModelOptions options;
  options.max_context = context;
  options.max_batch_tokens = f.batch;
  options.attention = f.naive ? whale::AttentionForm::kNaive : whale::AttentionForm::kAbsorbed;
  whale::Model model(weights, pool, options);
  whale::Generator generator(model, context);

  if (!f.dump_logits.empty()) {
    const std::vector<float> logits = generator.PromptLogits(prompt);
    std::ofstream out(f.dump_logits, std::ios::binary | std::ios::trunc);
    if (!out) whale::Fail(f.dump_logits, ": cannot create");
    // Raw little-endian float32 (x86 and ARM are little-endian), [n_prompt_tokens, vocab].
    out.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!out) whale::Fail(f.dump_logits, ": write error");
    std::fprintf(stderr, "wrote logits [%zu, %lld] to %s\n", prompt.size(),
                 static_cast<long long>(config.vocab_size), f.dump_logits.c_str());
    return 0;
  }

  whale::GenerationOptions options_gen;
  options_gen.max_tokens = f.n;
  options_gen.sampling = f.sampling;
  for (int64_t eos : config.eos_token_ids)
    options_gen.stop_tokens.push_back(static_cast<int32_t>(eos));
  // Text through the streaming decoder (complete UTF-8 characters only), or ids.
  std::optional<whale::StreamDecoder> decoder;
  if (tokenizer) decoder.emplace(*tokenizer);
  bool first = true;
  const whale::GenerationResult result =
      generator.Generate(prompt, options_gen, [&](int32_t token) {
        if (decoder) {
          std::fputs(decoder->Next(token).c_str(), stdout);
        } else {
          std::printf(first ? "%d" : ",%d", token);
        }
        first = false;
        std::fflush(stdout);
        return true;
      });
  if (decoder) std::fputs(decoder->Finish().c_str(), stdout);
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "prompt %lld tokens: %.1f tok/s prefill; generated %zu tokens: %.1f tok/s decode "
               "(%s, %d threads)\n",
               static_cast<long long>(result.prompt_tokens), result.prefill_tokens_per_second(),
               result.tokens.size(), result.decode_tokens_per_second(),
               whale::FinishReasonName(result.finish), pool.size());
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto f = std::make_shared<RunFlags>();
  sub.add_option("--model", f->model, "model directory (HF layout; default: the embedded model)");
  sub.add_option("--prompt", f->prompt, "prompt text (needs the model's tokenizer)");
  sub.add_option("--tokens", f->tokens, "prompt token ids, comma separated, fed exactly");
  sub.add_option("-n,--max-tokens", f->n, "tokens to generate")->capture_default_str();
  sub.add_option("--temp", f->sampling.temperature, "temperature (0 = greedy)")
      ->capture_default_str();
  sub.add_option("--top-k", f->sampling.top_k, "keep the k most likely tokens (0 = off)");
  sub.add_option("--top-p", f->sampling.top_p, "nucleus sampling mass (1 = off)");
  sub.add_option("--min-p", f->sampling.min_p, "drop tokens below min-p x the best (0 = off)");
  sub.add_option("--repeat-penalty", f->sampling.repetition_penalty, "repetition penalty");
  sub.add_option("--presence-penalty", f->sampling.presence_penalty, "presence penalty");
  sub.add_option("--frequency-penalty", f->sampling.frequency_penalty, "frequency penalty");
  sub.add_option("--seed", f->sampling.seed, "sampling seed");
  sub.add_option("--dump-logits", f->dump_logits,
                 "write the prompt's logits as raw float32 [n_prompt, vocab] and exit");
  sub.add_option("--ctx", f->context, "context length (default: prompt + max tokens)");
  sub.add_option("--threads", f->threads, "threads")->check(CLI::Range(1, 1024));
  sub.add_option("--batch", f->batch, "prefill chunk size in tokens")->check(CLI::Range(1, 65536));
  sub.add_flag("--naive-attention", f->naive, "expand per-head K/V instead of absorbed MLA");
  return [f] {
    f->sampling.Validate();
    return Run(*f);
  };
}

}  // namespace

WHALE_COMMAND(run, "generate tokens from a prompt and report prefill/decode speed", Setup);
