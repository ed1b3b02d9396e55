// Loading checkpoints: every tensor mapped in its stored dtype, and every mismatch between the
// config and the files a clear error naming the tensor.
#include "model/weights.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "model/layout.h"
#include "tiny_models.h"
#include "util/error.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
using testing::TinyModelDir;

TEST(Weights, FP8StaysFP8WithBlockScales) {
  const Weights w = Weights::Load(TinyModelDir("tiny-v3", StorageType::kFP8));
  const MlaWeights& a = w.layers[0].attention;
  EXPECT_EQ(a.kv_a.dtype, DType::F8_E4M3);
  EXPECT_NE(a.kv_a.block_scales, nullptr);
  EXPECT_EQ(a.kv_a.rows, 64 + 16);
  EXPECT_EQ(a.kv_a.cols, 200);
  EXPECT_EQ(w.embed.dtype, DType::BF16);
  EXPECT_EQ(w.layers[1].moe.router.dtype, DType::BF16);
  ASSERT_TRUE(w.layers[1].is_moe);
  EXPECT_EQ(w.layers[1].moe.experts.size(), 16u);
  ASSERT_TRUE(w.mtp.has_value());
  EXPECT_EQ(w.mtp->eh_proj.dtype, DType::BF16);
  // The views point into the mapped file: no copy was made.
  const Tensor stored = w.checkpoint().Get("model.layers.0.self_attn.kv_a_proj_with_mqa.weight");
  EXPECT_EQ(a.kv_a.data, stored.data());
  EXPECT_TRUE(a.kv_a.fp8_nan_free);
}

using CheckpointEdit = std::function<void(std::vector<PendingTensor>&, ModelConfig&)>;

// Writes a copy of the tiny FP8 checkpoint whose tensors and config `edit` changed; returns its
// folder, which the caller removes.
std::string WriteEditedCopy(const CheckpointEdit& edit) {
  const std::string source = TinyModelDir("tiny-v3", StorageType::kFP8);
  const Checkpoint original = Checkpoint::Open(source);
  ModelConfig config = LoadModelConfig(source);
  std::vector<PendingTensor> tensors;
  for (const std::string& name : original.Names()) {
    const Tensor t = original.Get(name);
    tensors.push_back(
        {name, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()),
         [t](std::span<uint8_t> out) { std::memcpy(out.data(), t.data(), out.size()); }});
  }
  edit(tensors, config);
  const std::string dir =
      (fs::temp_directory_path() / ("whale-broken-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  WriteCheckpoint(dir, tensors, 1 << 30);
  WriteTextFile(dir + "/config.json", ModelConfigToJson(config));
  return dir;
}

// Expects Load of an edited copy to fail with `fragment` in the message.
void ExpectBrokenCheckpoint(const CheckpointEdit& edit, const std::string& fragment) {
  const std::string dir = WriteEditedCopy(edit);
  try {
    Weights::Load(dir);
    FAIL() << "expected an error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A NaN code in a stored FP8 weight is found at load: that matrix keeps the kernels' NaN check, so
// the row holding it multiplies to NaN as in the reference, while the other matrices skip it.
TEST(Weights, Fp8NanCodesAreFoundAtLoad) {
  const std::string kv_a = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";
  const std::string dir = WriteEditedCopy([&](std::vector<PendingTensor>& tensors, ModelConfig&) {
    for (PendingTensor& t : tensors)
      if (t.name == kv_a)
        t.fill = [fill = t.fill](std::span<uint8_t> out) {
          fill(out);
          out[5] = 0xFF;  // row 0, column 5
        };
  });
  {
    const Weights w = Weights::Load(dir);
    const MlaWeights& a = w.layers[0].attention;
    EXPECT_FALSE(a.kv_a.fp8_nan_free);
    EXPECT_TRUE(a.q_a.fp8_nan_free);
    std::vector<float> x(a.kv_a.cols, 1.0f), y(a.kv_a.rows);
    MatMul(y, x, 1, a.kv_a, nullptr);
    EXPECT_TRUE(std::isnan(y[0]));
    EXPECT_FALSE(std::isnan(y[1]));
  }
  fs::remove_all(dir);
}

void Erase(std::vector<PendingTensor>& tensors, const std::string& name) {
  std::erase_if(tensors, [&](const PendingTensor& t) { return t.name == name; });
}

TEST(Weights, MismatchesAreErrorsNamingTheTensor) {
  const std::string q_b = "model.layers.1.self_attn.q_b_proj.weight";
  ExpectBrokenCheckpoint([&](auto& t, auto&) { Erase(t, q_b); }, "missing tensor '" + q_b + "'");
  ExpectBrokenCheckpoint([&](auto& t, auto&) { Erase(t, q_b + "_scale_inv"); },
                         "has no block scales '" + q_b + "_scale_inv'");
  ExpectBrokenCheckpoint(
      [&](auto& t, auto&) {
        t.push_back({"model.layers.1.self_attn.rotary_emb.inv_freq",
                     DType::F32,
                     {8},
                     [](std::span<uint8_t> out) { std::fill(out.begin(), out.end(), 0); }});
      },
      "unexpected tensor 'model.layers.1.self_attn.rotary_emb.inv_freq'");
  // A config that disagrees with the files: one more routed expert than stored.
  ExpectBrokenCheckpoint(
      [](auto&, ModelConfig& c) {
        c.n_routed_experts = 20;
        c.n_group = 4;
      },
      "'model.layers.1.mlp.gate.weight' has shape [16, 200] but config.json implies [20, 200]");
  ExpectBrokenCheckpoint([](auto&, ModelConfig& c) { c.hidden_size = 208; },
                         "has shape [512, 200] but config.json implies [512, 208]");
  ExpectBrokenCheckpoint(
      [](auto& t, auto&) {
        for (auto& p : t)
          if (p.name == "model.layers.1.mlp.gate.e_score_correction_bias") p.dtype = DType::F16;
      },
      "is F16; expected F32");
}

TEST(Weights, TruncatedShardIsAClearError) {
  const std::string source = TinyModelDir("tiny-v3", StorageType::kBF16);
  const std::string dir =
      (fs::temp_directory_path() / ("whale-truncated-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::copy(source, dir);
  const auto file = fs::path(dir) / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 1000);
  try {
    Weights::Load(dir);
    FAIL() << "expected a truncation error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace whale
