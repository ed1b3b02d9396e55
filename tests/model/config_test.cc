#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "model/layout.h"
#include "model/presets.h"
#include "util/error.h"

namespace whale {
namespace {

const std::string kData = WHALE_TEST_DATA;

ModelConfig Published(const std::string& file) {
  const std::string path = kData + "/configs/" + file;
  return ParseModelConfig(ReadTextFile(path), path);
}

// The published DeepSeek-V3 config: 671.0B main-model parameters, 685B stored with the MTP
// layer, about 37B active, 576 cached values per token per layer (spec sections 1 and 4.3).
TEST(ModelConfig, DeepSeekV3PublishedCounts) {
  const ModelConfig c = Published("deepseek-v3.json");
  EXPECT_EQ(c.model_type, ModelType::kDeepseekV3);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_EQ(c.quantization->block_rows, 128);
  EXPECT_EQ(c.latent_cache_values(), 576);
  EXPECT_NEAR(c.softmax_scale(), 0.1352337789, 1e-9);
  const ParameterCounts p = CountParameters(c);
  EXPECT_EQ(p.main_total, 671'026'419'200);      // spec section 1, from the shapes
  EXPECT_EQ(p.mtp_unique, 11'610'068'224);       // MTP without its embed/head copies
  EXPECT_EQ(p.stored_total(), 684'489'845'504);  // all stored weight elements
  // 9 of 257 experts per MoE layer; 37.55B by the spec's count, 36.6B without the embedding
  // lookup (README_WEIGHTS says 36.7B, the paper 37B).
  EXPECT_NEAR(static_cast<double>(p.main_active), 37.55e9, 0.01e9);
  EXPECT_NEAR(static_cast<double>(p.main_active_compute()), 37e9, 0.5e9);
}

TEST(ModelConfig, DeepSeekV2LitePublishedCounts) {
  const ModelConfig c = Published("deepseek-v2-lite.json");
  EXPECT_EQ(c.model_type, ModelType::kDeepseekV2);
  EXPECT_EQ(c.q_lora_rank, 0);  // null in the file
  EXPECT_EQ(c.topk_method, TopkMethod::kGreedy);
  EXPECT_FALSE(c.quantization.has_value());
  EXPECT_NEAR(c.softmax_scale(), 0.1147213868, 1e-9);
  const ParameterCounts p = CountParameters(c);
  EXPECT_EQ(p.main_total, 15'706'484'224);  // matches the published checkpoint's header dump
  // The V2 paper's "2.4B activated" leaves out the embedding lookup (0.21B).
  EXPECT_NEAR(static_cast<double>(p.main_active_compute()), 2.4e9, 0.1e9);
}

TEST(ModelConfig, PresetsRoundTripThroughJson) {
  for (const Preset& preset : Presets()) {
    const std::string json = ModelConfigToJson(preset.config);
    const ModelConfig back = ParseModelConfig(json, preset.name);
    EXPECT_EQ(ModelConfigToJson(back), json) << preset.name;
    EXPECT_EQ(CountParameters(back).main_total, CountParameters(preset.config).main_total);
  }
  // The preset with the published shapes counts what the published config counts.
  EXPECT_EQ(CountParameters(FindPreset("v3-671b").config).main_total, 671'026'419'200);
  EXPECT_EQ(CountParameters(FindPreset("v2-lite").config).main_total, 15'706'484'224);
  const auto small = CountParameters(FindPreset("small-v3").config);
  EXPECT_GT(small.main_total, 0.9e9);
  EXPECT_LT(small.main_total, 1.3e9);
}

TEST(ModelConfig, FP8ScaleShapesUseCeilDivision) {
  EXPECT_EQ(ScaleShape({576, 7168}, 128, 128), (std::vector<int64_t>{5, 56}));
  EXPECT_EQ(ScaleShape({24576, 1536}, 128, 128), (std::vector<int64_t>{192, 12}));
  EXPECT_EQ(ScaleShape({80, 200}, 128, 128), (std::vector<int64_t>{1, 2}));
}

TEST(ModelConfig, V3LayoutHasThePublishedTensorCount) {
  // The spec counts 91,991 tensors in the published checkpoint, FP8 scales included.
  const ModelConfig c = Published("deepseek-v3.json");
  int64_t weights = 0, fp8 = 0;
  for (const auto& t : CheckpointLayout(c)) {
    ++weights;
    fp8 += t.role == TensorRole::kLinear;
  }
  EXPECT_EQ(weights + fp8, 91'991);  // each FP8 linear weight has a scale companion
}

std::string Mutate(const std::string& key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(ReadTextFile(kData + "/configs/deepseek-v3.json"));
  if (value.is_discarded()) {
    j.erase(key);
  } else {
    j[key] = value;
  }
  return j.dump();
}

void ExpectError(const std::string& json, const std::string& fragment) {
  try {
    ParseModelConfig(json, "config.json");
    FAIL() << "expected an error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, BadValuesNameFieldAndValue) {
  const auto removed = nlohmann::json(nlohmann::json::value_t::discarded);
  ExpectError(Mutate("model_type", "llama"), "field 'model_type' = \"llama\"");
  ExpectError(Mutate("scoring_func", "relu"), "field 'scoring_func' = \"relu\"");
  ExpectError(Mutate("topk_method", "top1"), "field 'topk_method' = \"top1\"");
  ExpectError(Mutate("hidden_size", -5), "field 'hidden_size' = -5");
  ExpectError(Mutate("hidden_size", "big"), "field 'hidden_size' = \"big\"");
  ExpectError(Mutate("hidden_size", removed), "missing required field 'hidden_size'");
  ExpectError(Mutate("hidden_act", "gelu"), "field 'hidden_act' = \"gelu\"");
  ExpectError(Mutate("n_group", 7), "not divisible by n_group = 7");
  ExpectError(Mutate("topk_group", 9), "topk_group = 9 exceeds n_group = 8");
  ExpectError(Mutate("num_experts_per_tok", 300), "num_experts_per_tok = 300");
  ExpectError(Mutate("qk_rope_head_dim", 63), "qk_rope_head_dim = 63 must be even");
  ExpectError(Mutate("first_k_dense_replace", 70), "first_k_dense_replace = 70");
  ExpectError(Mutate("eos_token_id", 200000), "eos_token_id = 200000");
  ExpectError(Mutate("num_nextn_predict_layers", 2), "num_nextn_predict_layers = 2");
  ExpectError(Mutate("rope_scaling", {{"type", "linear"}, {"factor", 2}}),
              "'rope_scaling.type' = \"linear\"");
  ExpectError(Mutate("quantization_config", {{"quant_method", "gptq"}}),
              "field 'quant_method' = \"gptq\"");
  ExpectError(
      Mutate("quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {128}}}),
      "weight_block_size");
  ExpectError(Mutate("rope_interleave", false), "field 'rope_interleave' = false");
  ExpectError("{not json", "not valid JSON");
  ExpectError("[1, 2]", "expected a JSON object");
}

TEST(ModelConfig, AcceptsTransformersFiveRopeParameters) {
  nlohmann::json j = nlohmann::json::parse(ReadTextFile(kData + "/configs/deepseek-v3.json"));
  nlohmann::json rope = j["rope_scaling"];
  rope.erase("type");
  rope["rope_type"] = "yarn";
  rope["rope_theta"] = 10000;
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rope;
  const ModelConfig c = ParseModelConfig(j.dump(), "config.json");
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->factor, 40);
  EXPECT_NEAR(c.softmax_scale(), 0.1352337789, 1e-9);
}

}  // namespace
}  // namespace whale
