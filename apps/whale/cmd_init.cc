// whale init: a deterministic randomly initialized checkpoint in exact Hugging Face layout.
#include <cstdio>
#include <filesystem>
#include <thread>

#include "command.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/summary.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

struct InitFlags {
  std::string preset;
  std::string dtype = "bf16";
  uint64_t seed = 0;
  std::string out;
  std::string tokenizer;
  bool meta = false;
  double shard_gib = 4.0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
};

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<InitFlags>();
  std::string presets;
  for (const auto& p : whale::Presets()) presets += "\n  " + p.name + ": " + p.description;
  sub.add_option("--preset", flags->preset, "model shape:" + presets)->required();
  sub.add_option("--dtype", flags->dtype, "weight storage: f32, bf16 or fp8")
      ->check(CLI::IsMember({"f32", "bf16", "fp8"}))
      ->capture_default_str();
  sub.add_option("--seed", flags->seed, "random seed")->capture_default_str();
  sub.add_option("--out", flags->out, "output directory")->required();
  sub.add_option("--tokenizer", flags->tokenizer,
                 "copy DIR's tokenizer.json and tokenizer_config.json (and chat_template.jinja) "
                 "into the checkpoint and size the vocabulary to the tokenizer");
  sub.add_flag("--meta", flags->meta, "write config.json only (no weights)");
  sub.add_option("--shard-gib", flags->shard_gib, "largest shard in GiB before splitting")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--threads", flags->threads, "threads")->check(CLI::Range(1, 1024));
  return [flags] {
    const whale::Preset& preset = whale::FindPreset(flags->preset);
    whale::ModelConfig model_config = preset.config;
    namespace fs = std::filesystem;
    if (!flags->tokenizer.empty()) {
      const whale::Tokenizer tokenizer = whale::Tokenizer::FromModelDir(flags->tokenizer);
      // The embedding and head rows the tokenizer's ids address; BOS/EOS ids from its config.
      model_config.vocab_size = tokenizer.vocab_size();
      if (auto bos = tokenizer.bos_id()) model_config.bos_token_id = *bos;
      if (auto eos = tokenizer.eos_id()) model_config.eos_token_ids = {*eos};
    }
    whale::RandomCheckpointOptions options;
    options.storage = whale::ParseStorageType(flags->dtype);
    options.seed = flags->seed;
    options.config_only = flags->meta;
    options.max_shard_bytes = static_cast<uint64_t>(flags->shard_gib * (1ull << 30));
    options.show_progress = true;
    if (preset.name == "v3-671b" && !flags->meta)
      whale::Fail(
          "preset v3-671b would write about 685 GB of weights; add --meta to write its "
          "config.json only");
    whale::ThreadPool pool(flags->threads);
    const whale::ModelConfig config =
        whale::WriteRandomCheckpoint(model_config, options, flags->out, pool);
    if (!flags->tokenizer.empty()) {
      for (const char* name : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
        const fs::path from = fs::path(flags->tokenizer) / name;
        if (!fs::exists(from)) continue;
        std::error_code error;
        fs::copy_file(from, fs::path(flags->out) / name, fs::copy_options::overwrite_existing,
                      error);
        if (error)
          whale::Fail("copying ", from.string(), " into ", flags->out, ": ", error.message());
      }
    }
    std::printf("wrote %s (%s, %s, seed %llu)\n", flags->out.c_str(), preset.name.c_str(),
                flags->meta ? "config only" : flags->dtype.c_str(),
                static_cast<unsigned long long>(flags->seed));
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(init, "write a randomly initialized checkpoint (HF layout) from a preset", Setup);
