// The training loop: exact resumption, gradient accumulation, thread-count independence, and
// the files a run leaves (HF checkpoint, metrics.jsonl, report.html).
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "model/weights.h"
#include "train/metrics.h"
#include "train_model_testing.h"

namespace whale {
namespace {

using testing::MicroConfig;
using testing::RandomTokenSource;
using testing::TempDir;

TrainConfig SmallRun(const std::string& out) {
  TrainConfig c;
  c.init_preset = "micro";
  c.out = out;
  c.steps = 6;
  c.seq_len = 16;
  c.batch_tokens = 64;
  c.schedule.peak_lr = 3e-3;
  c.schedule.warmup = 0.2;
  c.loss.bias_gamma = 1e-2;
  return c;
}

// A run stopped after 3 of 6 steps and resumed in a new process state (fresh parameters,
// optimizer, data source) ends bit-identical to the uninterrupted run, also when the checkpoint
// stores BF16 weights (the optimizer state keeps the F32 masters).
void CheckResume(const std::string& save_dtype) {
  ThreadPool pool(2);
  const ModelConfig config = MicroConfig(64);
  ParameterSet<float> straight(config);
  InitializeParameters(straight, 5);
  {
    RandomTokenSource data(64, 9);
    TrainConfig c = SmallRun(TempDir("straight" + save_dtype));
    c.save_dtype = save_dtype;
    Trainer trainer(c, straight, data, pool, "");
    trainer.Run(std::nullopt, true);
  }
  const std::string out = TempDir("resumed" + save_dtype);
  TrainConfig c = SmallRun(out);
  c.save_dtype = save_dtype;
  {
    ParameterSet<float> first(config);
    InitializeParameters(first, 5);
    RandomTokenSource data(64, 9);
    Trainer trainer(c, first, data, pool, "");
    trainer.Run(3, true);
    EXPECT_EQ(trainer.step(), 3);
  }
  ParameterSet<float> resumed(config);  // left uninitialized: Resume loads everything
  RandomTokenSource data(64, 9);
  Trainer trainer(c, resumed, data, pool, "");
  trainer.Resume();
  EXPECT_EQ(trainer.step(), 3);
  EXPECT_EQ(data.drawn(), 3);
  trainer.Run(std::nullopt, true);
  for (size_t i = 0; i < straight.all().size(); ++i)
    ASSERT_EQ(straight.all()[i].value, resumed.all()[i].value) << straight.all()[i].name;
  const auto rows = ReadMetrics(out + "/metrics.jsonl");
  ASSERT_EQ(rows.size(), 6u);
  for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(rows[k].at("step"), k + 1);
}

TEST(Trainer, ResumeIsBitIdentical) {
  CheckResume("f32");
}
TEST(Trainer, ResumeIsBitIdenticalWithBf16Checkpoint) {
  CheckResume("bf16");
}

TEST(Trainer, ThreadCountDoesNotChangeTheRun) {
  const ModelConfig config = MicroConfig(64);
  std::vector<ParameterSet<float>> runs;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    runs.emplace_back(config);
    InitializeParameters(runs.back(), 2);
    RandomTokenSource data(64, 4);
    TrainConfig c = SmallRun(TempDir("threads" + std::to_string(threads)));
    c.steps = 3;
    Trainer trainer(c, runs.back(), data, pool, "");
    trainer.Run(std::nullopt, true);
  }
  for (size_t i = 0; i < runs[0].all().size(); ++i)
    ASSERT_EQ(runs[0].all()[i].value, runs[1].all()[i].value) << runs[0].all()[i].name;
}

// Two micro-batches of 2 rows accumulate the gradient of one batch of 4 rows: every row has the
// same number of targets, so the mean of the micro-batch means is the batch mean. They differ by
// F32 summation order only: 1e-5 of each tensor's largest gradient.
TEST(Trainer, GradientAccumulationEqualsOneBigBatch) {
  const ModelConfig config = MicroConfig(64);
  ThreadPool pool(2);
  std::vector<ParameterSet<float>> grads;
  for (int64_t micro : {64, 32}) {
    grads.emplace_back(config);
    InitializeParameters(grads.back(), 3);
    TrainModel<float> model(grads.back(), &pool);
    RandomTokenSource data(64, 6);
    TokenBatch all;
    all.n_seqs = 4;
    all.seq_len = 16;
    data.Next(all);
    const int64_t parts = 64 / micro;
    for (int64_t part = 0; part < parts; ++part) {
      TokenBatch b;
      b.n_seqs = 4 / parts;
      b.seq_len = 16;
      const int64_t n = b.n_seqs * 16;
      b.inputs.assign(all.inputs.begin() + part * n, all.inputs.begin() + (part + 1) * n);
      b.targets.assign(all.targets.begin() + part * n, all.targets.begin() + (part + 1) * n);
      b.segments.assign(n, 0);
      model.Step(b, LossWeights{0.3, 1e-2}, 1.0 / static_cast<double>(parts), true);
    }
  }
  for (size_t i = 0; i < grads[0].all().size(); ++i) {
    const auto& a = grads[0].all()[i].grad;
    const auto& b = grads[1].all()[i].grad;
    double max = 0, diff = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      max = std::max(max, std::fabs(static_cast<double>(a[j])));
      diff = std::max(diff, std::fabs(static_cast<double>(a[j]) - b[j]));
    }
    EXPECT_LE(diff, 1e-5 * max + 1e-12) << grads[0].all()[i].name;
  }
}

TEST(Trainer, WritesServableCheckpointMetricsAndReport) {
  const ModelConfig config = MicroConfig(64);
  ThreadPool pool(2);
  ParameterSet<float> params(config);
  InitializeParameters(params, 1);
  RandomTokenSource data(64, 2);
  const std::string out = TempDir("files");
  TrainConfig c = SmallRun(out);
  c.steps = 2;
  Trainer trainer(c, params, data, pool, "");
  trainer.Run(std::nullopt, true);
  for (const char* file : {"config.json", "model.safetensors", "metrics.jsonl", "report.html",
                           "trainer_state.json", "optimizer.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + file)) << file;
  const Weights weights = Weights::Load(out);  // validates every tensor against the layout
  EXPECT_EQ(weights.config().hidden_size, 48);
  const auto rows = ReadMetrics(out + "/metrics.jsonl");
  ASSERT_EQ(rows.size(), 2u);
  for (const char* key :
       {"step", "loss", "loss_main", "loss_mtp", "loss_balance", "lr", "grad_norm", "tokens_per_s",
        "elapsed_s", "expert_load", "expert_load_layers"})
    EXPECT_TRUE(rows[1].contains(key)) << key;
  EXPECT_EQ(rows[1].at("expert_load_layers"), nlohmann::json({1, 2}));
  // Each MoE layer routes every token to top_k experts.
  int64_t total = 0;
  for (int64_t count : rows[1].at("expert_load")[0]) total += count;
  EXPECT_EQ(total, 64 * 2);
}

}  // namespace
}  // namespace whale
