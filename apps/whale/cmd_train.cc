// whale train: pretrain a DeepSeek-V3-architecture model from a preset or continue a checkpoint.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "command.h"
#include "model/presets.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/task_documents.h"
#include "train/token_shards.h"
#include "train/train_config.h"
#include "train/train_parameters.h"
#include "train/trainer.h"
#include "util/error.h"

namespace {

struct TrainFlags {
  whale::TrainConfig config;
  std::string config_file;
  std::string precision = "f32";
  double lr = 0;
};

bool IsShard(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::memcmp(magic, "WHLSHARD", 8) == 0;
}

std::optional<int32_t> FindEos(const whale::Tokenizer& tokenizer) {
  for (const char* name : {"<｜end▁of▁sentence｜>", "<|endoftext|>", "</s>", "<eos>", "<|eos|>"})
    if (auto id = tokenizer.TokenId(name)) return id;
  return std::nullopt;
}

// Worked task conversations in the chat template of the tokenizer's directory (its
// tokenizer_config.json), drawn from the train split.
struct TaskData {
  explicit TaskData(const whale::TrainConfig& c)
      : dir(std::filesystem::path(c.tokenizer).parent_path().string()),
        tokenizer(whale::Tokenizer::FromModelDir(dir.empty() ? "." : dir)),
        chat_template(whale::ChatTemplate::FromModelDir(dir.empty() ? "." : dir)),
        sampler(whale::ParseTaskMix(c.tasks), whale::Split::kTrain, c.seed),
        formatter(tokenizer, chat_template) {
    if (chat_template.is_builtin()) {
      whale::Fail("--tasks: ", dir, " has no chat template (tokenizer_config.json chat_template); ",
                  "task conversations need the model's own template");
    }
  }

  std::unique_ptr<whale::DataSource> MakeSource(const whale::TrainConfig& c) {
    whale::GeneratorSourceOptions options;
    options.isolate_documents = c.sft || c.document_isolation;
    options.pad_id = formatter.eos_id();
    options.name = (c.sft ? "SFT on tasks " : "tasks ") + whale::TaskMixToString(sampler.mix());
    return std::make_unique<whale::GeneratorDataSource>(
        whale::TaskDocumentGenerator(sampler, formatter, c.sft), options);
  }

  std::string dir;
  whale::Tokenizer tokenizer;
  whale::ChatTemplate chat_template;
  whale::TaskSampler sampler;
  whale::TaskFormatter formatter;
};

whale::ModelConfig BuildConfig(const whale::TrainConfig& c, const whale::Tokenizer& tokenizer) {
  whale::ModelConfig config;
  if (!c.init_preset.empty()) {
    config = whale::FindPreset(c.init_preset).config;
    config.vocab_size = tokenizer.vocab_size();
    if (auto eos = FindEos(tokenizer)) config.eos_token_ids = {*eos};
    if (auto bos = tokenizer.bos_id()) {
      config.bos_token_id = *bos;
    } else {
      config.bos_token_id = config.eos_token_ids.empty() ? 0 : config.eos_token_ids[0];
    }
  } else {
    config = whale::LoadModelConfig(c.model_dir);
  }
  if (!c.model_overrides.empty()) {
    nlohmann::json j = nlohmann::json::parse(whale::ModelConfigToJson(config));
    j.update(c.model_overrides);
    config = whale::ParseModelConfig(j.dump(), "model_overrides");
  }
  config.quantization.reset();
  if (config.vocab_size < tokenizer.vocab_size())
    whale::Fail("model vocab_size ", config.vocab_size, " is smaller than the tokenizer's ",
                tokenizer.vocab_size());
  return config;
}

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<TrainFlags>();
  whale::TrainConfig& c = flags->config;
  sub.add_option("--config", flags->config_file,
                 "JSON file with any of these settings plus schedule, loss, optimizer and "
                 "model_overrides; flags given on the command line win");
  sub.add_option("--init", c.init_preset, "start from a fresh preset sized to the tokenizer");
  sub.add_option("--model", c.model_dir, "continue from a checkpoint directory (HF layout)");
  sub.add_option("--tokenizer", c.tokenizer, "tokenizer.json");
  sub.add_option("--data", c.data, "text files or token shards (whale tokenizer shards)");
  sub.add_option("--tasks", c.tasks,
                 "instead of --data: worked task conversations, e.g. add:1-3,sub:1-3,mul:1-2*0.5");
  sub.add_flag("--sft", c.sft, "loss on the assistant's tokens only, documents isolated");
  sub.add_option("--steps", c.steps, "optimizer steps")->capture_default_str();
  sub.add_option("--seq-len", c.seq_len, "tokens per sequence")->capture_default_str();
  sub.add_option("--batch-tokens", c.batch_tokens, "tokens per optimizer step")
      ->capture_default_str();
  sub.add_option("--micro-batch-tokens", c.micro_batch_tokens,
                 "tokens per forward/backward (gradient accumulation); 0 = batch-tokens");
  sub.add_option("--lr", flags->lr, "peak learning rate (default 1e-3)");
  sub.add_option("--precision", flags->precision, "f32 or fp8 (V3's FP8 recipe, emulated)")
      ->check(CLI::IsMember({"f32", "fp8"}));
  sub.add_option("--seed", c.seed, "seed of the initialization and the data order");
  sub.add_flag("--resume", c.resume, "continue the run saved in --out");
  sub.add_option("--out", c.out, "output directory");
  sub.add_option("--threads", c.threads, "threads (0 = all cores)");
  sub.add_option("--log-every", c.log_every, "metrics row every N steps");
  sub.add_option("--checkpoint-every", c.checkpoint_every,
                 "checkpoint every N steps (0: at the end)");
  sub.add_option("--save-dtype", c.save_dtype, "f32 or bf16 weights in the checkpoint")
      ->check(CLI::IsMember({"f32", "bf16"}));
  return [flags, &sub] {
    // Defaults, then the config file, then the flags given explicitly.
    whale::TrainConfig config;
    if (!flags->config_file.empty()) whale::LoadTrainConfigFile(config, flags->config_file);
    const whale::TrainConfig& f = flags->config;
    const auto given = [&](const char* name) { return sub.count(name) > 0; };
    if (given("--init")) config.init_preset = f.init_preset;
    if (given("--model")) config.model_dir = f.model_dir;
    if (given("--tokenizer")) config.tokenizer = f.tokenizer;
    if (given("--data")) config.data = f.data;
    if (given("--tasks")) config.tasks = f.tasks;
    if (given("--sft")) config.sft = f.sft;
    if (given("--steps")) config.steps = f.steps;
    if (given("--seq-len")) config.seq_len = f.seq_len;
    if (given("--batch-tokens")) config.batch_tokens = f.batch_tokens;
    if (given("--micro-batch-tokens")) config.micro_batch_tokens = f.micro_batch_tokens;
    if (given("--lr")) config.schedule.peak_lr = flags->lr;
    if (given("--precision")) config.precision = whale::ParsePrecision(flags->precision);
    if (given("--seed")) config.seed = f.seed;
    if (given("--resume")) config.resume = f.resume;
    if (given("--out")) config.out = f.out;
    if (given("--threads")) config.threads = f.threads;
    if (given("--log-every")) config.log_every = f.log_every;
    if (given("--checkpoint-every")) config.checkpoint_every = f.checkpoint_every;
    if (given("--save-dtype")) config.save_dtype = f.save_dtype;
    if (config.out.empty()) whale::Fail("--out is required");
    if (config.tokenizer.empty()) whale::Fail("--tokenizer is required");
    if (config.data.empty() && config.tasks.empty()) {
      whale::Fail("--data needs at least one file (or --tasks SPEC)");
    }
    whale::ValidateTrainConfig(config);

    const whale::Tokenizer tokenizer = whale::Tokenizer::FromFile(config.tokenizer);
    const whale::ModelConfig model_config = BuildConfig(config, tokenizer);
    whale::ParameterSet<float> params(model_config);
    if (config.model_dir.empty()) {
      whale::InitializeParameters(params, config.seed);
    } else {
      whale::LoadParameters(params, config.model_dir);
    }

    std::unique_ptr<whale::DataSource> data;
    std::unique_ptr<TaskData> task_data;
    bool shards = !config.tasks.empty();
    for (const auto& path : config.data) shards = shards && IsShard(path);
    if (!config.tasks.empty()) {
      task_data = std::make_unique<TaskData>(config);
      data = task_data->MakeSource(config);
    } else if (shards) {
      whale::ShardSourceOptions options;
      options.seed = config.seed;
      options.isolate_documents = config.document_isolation;
      data = std::make_unique<whale::ShardDataSource>(config.data, options);
    } else {
      whale::TextSourceOptions options;
      options.eos_id = FindEos(tokenizer);
      options.isolate_documents = config.document_isolation;
      data = std::make_unique<whale::TextDataSource>(tokenizer, config.data, options);
    }

    const int threads =
        config.threads > 0 ? config.threads : static_cast<int>(std::thread::hardware_concurrency());
    whale::ThreadPool pool(std::max(1, threads));
    std::filesystem::create_directories(config.out);
    whale::Trainer trainer(config, params, *data, pool, config.tokenizer);
    if (config.resume) trainer.Resume();
    std::fprintf(stderr, "training %lld parameters on %s for %lld steps of %lld tokens (%s)\n",
                 static_cast<long long>(params.numel()), data->Describe().c_str(),
                 static_cast<long long>(config.steps), static_cast<long long>(config.batch_tokens),
                 whale::PrecisionName(config.precision));
    trainer.Run();
    std::printf("wrote %s (checkpoint, metrics.jsonl, report.html) after %lld steps\n",
                config.out.c_str(), static_cast<long long>(trainer.step()));
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(train, "pretrain a model (HF checkpoint, metrics.jsonl, report.html)", Setup);
