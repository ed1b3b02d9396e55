// whale grpo: reinforcement learning with verifiable rewards (GRPO, Dr. GRPO, DAPO) on the
// procedural tasks, starting from a checkpoint (usually after pretraining on worked solutions).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "command.h"
#include "train/grpo.h"
#include "train/grpo_config.h"
#include "util/error.h"

namespace {

struct GrpoFlags {
  whale::GrpoConfig config;
  std::string config_file;
};

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<GrpoFlags>();
  whale::GrpoConfig& c = flags->config;
  sub.add_option("--config", flags->config_file,
                 "JSON file with any GRPO setting (see train/grpo_config.h); flags given on the "
                 "command line win");
  sub.add_option("--model", c.model, "starting checkpoint (HF layout with tokenizer files)");
  sub.add_option("--tasks", c.tasks, "task mix, e.g. \"add:2-3,mul:1-2*0.5,countdown:3\"");
  sub.add_option("--out", c.out, "output directory");
  sub.add_option("--steps", c.steps, "rollout steps")->capture_default_str();
  sub.add_option("--prompts", c.prompts_per_step, "prompts (groups) per step")
      ->capture_default_str();
  sub.add_option("--group", c.group_size, "completions per prompt (G)")->capture_default_str();
  sub.add_option("--max-tokens", c.max_tokens, "completion budget L_max")->capture_default_str();
  sub.add_option("--lr", c.lr, "learning rate (constant after warmup)")->capture_default_str();
  sub.add_option("--mini-batches", c.mini_batches, "optimizer steps per rollout")
      ->capture_default_str();
  sub.add_option("--beta", c.beta, "KL (k3) weight to the starting model")->capture_default_str();
  sub.add_option("--variant", c.variant, "grpo, dr-grpo or dapo")
      ->check(CLI::IsMember({"grpo", "dr-grpo", "dapo"}));
  sub.add_option("--temperature", c.temperature, "sampling temperature (default 1)");
  sub.add_option("--seed", c.seed, "seed of prompts, sampling and mini-batch order");
  sub.add_option("--threads", c.threads, "threads (0 = all cores)");
  sub.add_option("--log-every", c.log_every, "metrics row every N steps");
  sub.add_option("--checkpoint-every", c.checkpoint_every,
                 "checkpoint every N steps (0: at the end)");
  sub.add_option("--save-dtype", c.save_dtype, "f32 or bf16 weights in the checkpoint")
      ->check(CLI::IsMember({"f32", "bf16"}));
  return [flags, &sub] {
    // Defaults, then the config file, then the flags given explicitly.
    whale::GrpoConfig config;
    if (!flags->config_file.empty()) whale::LoadGrpoConfigFile(config, flags->config_file);
    const whale::GrpoConfig& f = flags->config;
    const auto given = [&](const char* name) { return sub.count(name) > 0; };
    if (given("--model")) config.model = f.model;
    if (given("--tasks")) config.tasks = f.tasks;
    if (given("--out")) config.out = f.out;
    if (given("--steps")) config.steps = f.steps;
    if (given("--prompts")) config.prompts_per_step = f.prompts_per_step;
    if (given("--group")) config.group_size = f.group_size;
    if (given("--max-tokens")) config.max_tokens = f.max_tokens;
    if (given("--lr")) config.lr = f.lr;
    if (given("--mini-batches")) config.mini_batches = f.mini_batches;
    if (given("--beta")) config.beta = f.beta;
    if (given("--variant")) config.variant = f.variant;
    if (given("--temperature")) config.temperature = f.temperature;
    if (given("--seed")) config.seed = f.seed;
    if (given("--threads")) config.threads = f.threads;
    if (given("--log-every")) config.log_every = f.log_every;
    if (given("--checkpoint-every")) config.checkpoint_every = f.checkpoint_every;
    if (given("--save-dtype")) config.save_dtype = f.save_dtype;
    whale::ValidateGrpoConfig(config);

    const int threads =
        config.threads > 0 ? config.threads : static_cast<int>(std::thread::hardware_concurrency());
    whale::ThreadPool pool(std::max(1, threads));
    whale::GrpoTrainer trainer(config, pool);
    std::fprintf(stderr,
                 "GRPO (%s) on %lld parameters: %lld steps of %lld prompts x %lld completions, "
                 "tasks %s\n",
                 config.variant.c_str(), static_cast<long long>(trainer.params().numel()),
                 static_cast<long long>(config.steps),
                 static_cast<long long>(config.prompts_per_step),
                 static_cast<long long>(config.group_size), config.tasks.c_str());
    trainer.Run();
    std::printf(
        "wrote %s (checkpoint, metrics.jsonl, samples.jsonl, report.html) after %lld steps\n",
        config.out.c_str(), static_cast<long long>(trainer.step()));
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(grpo, "reinforcement learning on verifiable tasks (GRPO, Dr. GRPO, DAPO)", Setup);
