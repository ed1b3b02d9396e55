// whale quantize's checkpoints: config round trip, what the loader maps, inspect's summary, and
// clear errors for broken quantized files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "io/mapped_file.h"
#include "kernels/quant_matmul.h"
#include "model/layout.h"
#include "model/quantize.h"
#include "model/summary.h"
#include "model/weights.h"
#include "tiny_models.h"
#include "util/error.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
using testing::TinyModelDir;

// One quantized copy of a tiny checkpoint per (preset storage, format), made once.
std::string QuantizedDir(StorageType storage, QuantFormat format) {
  const std::string dir = TinyModelDir("tiny-v3", storage) + "-q" + QuantFormatName(format);
  if (!fs::exists(dir + "/config.json")) {
    ThreadPool pool(2);
    QuantizeCheckpoint(TinyModelDir("tiny-v3", storage), dir, format, pool, false);
  }
  return dir;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(QuantCheckpoint, ConfigRoundTripAndErrors) {
  ModelConfig c = LoadModelConfig(TinyModelDir("tiny-v3", StorageType::kF32));
  c.block_quantization = BlockQuantization{QuantFormat::kInt4, 32};
  const std::string json = ModelConfigToJson(c);
  EXPECT_NE(json.find("\"quant_method\": \"whale\""), std::string::npos) << json;
  const ModelConfig back = ParseModelConfig(json, "config.json");
  ASSERT_TRUE(back.block_quantization.has_value());
  EXPECT_EQ(back.block_quantization->format, QuantFormat::kInt4);
  EXPECT_FALSE(back.quantization.has_value());
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string text = json;
    text.replace(text.find(from), from.size(), to);
    return ErrorOf([&] { ParseModelConfig(text, "cfg.json"); });
  };
  EXPECT_NE(with("\"int4\"", "\"int3\"").find("quantization_config: field 'format' = \"int3\""),
            std::string::npos);
  EXPECT_NE(with("\"group_size\": 32", "\"group_size\": 64").find("group_size' = 64: expected 32"),
            std::string::npos);
  EXPECT_NE(with("\"whale\"", "\"gptq\"").find("quant_method"), std::string::npos);
  // A file from before the interleaved layout (no "layout" field) is refused by name.
  EXPECT_NE(with("\"layout\": \"rows8\",", "").find("'quantization_config.layout' = missing"),
            std::string::npos);
  EXPECT_NE(with("\"rows8\"", "\"rows\"").find("older whale"), std::string::npos);
}

// FP8 input: dequantized with its block scales, then quantized; the loader maps codes in place.
TEST(QuantCheckpoint, LoadsCodesAndScalesInPlace) {
  for (QuantFormat format : {QuantFormat::kInt8, QuantFormat::kInt4}) {
    const std::string dir = QuantizedDir(StorageType::kFP8, format);
    const Weights w = Weights::Load(dir);
    const DType codes = format == QuantFormat::kInt8 ? DType::I8 : DType::U8;
    const WeightMatrix& kv_a = w.layers[0].attention.kv_a;
    EXPECT_EQ(kv_a.dtype, codes);
    EXPECT_EQ(kv_a.rows, 64 + 16);
    EXPECT_EQ(kv_a.cols, 200);  // logical: stored as 10 row blocks of 7 groups
    EXPECT_EQ(kv_a.data,
              w.checkpoint().Get("model.layers.0.self_attn.kv_a_proj_with_mqa.weight").data());
    EXPECT_EQ(kv_a.block_scales, nullptr);
    EXPECT_EQ(w.layers[1].moe.experts[3].down.dtype, codes);
    EXPECT_EQ(w.mtp->eh_proj.dtype, codes);
    EXPECT_EQ(w.embed.dtype, DType::BF16);
    // The output heads are int8 in both formats (layout.h BlockQuantizedFormat).
    EXPECT_EQ(w.lm_head.dtype, DType::I8);
    EXPECT_EQ(w.mtp->head.dtype, DType::I8);
    EXPECT_EQ(w.lm_head.rows, w.config().vocab_size);
    EXPECT_EQ(w.layers[1].moe.router.dtype, DType::BF16);
    // The stored weight is the FP8 weight quantized: within the format's error bound of it.
    const Weights original = Weights::Load(TinyModelDir("tiny-v3", StorageType::kFP8));
    const WeightMatrix& o = original.layers[0].attention.o;
    const WeightMatrix& q = w.layers[0].attention.o;
    std::vector<float> a(o.rows * o.cols), b(o.rows * o.cols);
    DequantizeRows(a, o, 0, o.rows);
    DequantizeRowsQuant(b, q, 0, q.rows);
    for (int64_t i = 0; i < o.rows * o.cols; ++i) {
      const auto* stored = static_cast<const uint8_t*>(q.data);
      const int64_t at = QuantScaleIndex(format, o.cols, i / o.cols, (i % o.cols) / kQuantGroup);
      const double scale =
          std::abs(F16ToF32(static_cast<uint16_t>(stored[at] | stored[at + 1] << 8)));
      ASSERT_LE(std::abs(a[i] - b[i]), scale) << i;
    }
    // Metadata and the copied companions.
    const SafetensorsFile file(dir + "/model.safetensors");
    EXPECT_NE(file.header().metadata.at("whale_quantization").find(QuantFormatName(format)),
              std::string::npos);
    const std::string summary = DescribeModel(w.config(), &w.checkpoint());
    EXPECT_NE(
        summary.find(Cat("whale ", QuantFormatName(format), " (output heads int8), groups of 32")),
        std::string::npos)
        << summary;
  }
}

TEST(QuantCheckpoint, RefusesQuantizedInputAndSameDirectory) {
  ThreadPool pool(1);
  const std::string q = QuantizedDir(StorageType::kFP8, QuantFormat::kInt8);
  EXPECT_NE(ErrorOf([&] {
              QuantizeCheckpoint(q, q + "-again", QuantFormat::kInt4, pool, false);
            }).find("already quantized"),
            std::string::npos);
  const std::string f = TinyModelDir("tiny-v3", StorageType::kF32);
  EXPECT_NE(ErrorOf([&] {
              QuantizeCheckpoint(f, f, QuantFormat::kInt4, pool, false);
            }).find("is the input directory"),
            std::string::npos);
}

// A copy of the int8 checkpoint with `edit` applied must fail to load with `fragment`.
void ExpectBroken(const std::function<void(std::vector<PendingTensor>&)>& edit,
                  const std::string& fragment) {
  const std::string source = QuantizedDir(StorageType::kFP8, QuantFormat::kInt8);
  const Checkpoint original = Checkpoint::Open(source);
  std::vector<PendingTensor> tensors;
  for (const std::string& name : original.Names()) {
    const Tensor t = original.Get(name);
    tensors.push_back(
        {name, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()),
         [t](std::span<uint8_t> out) { std::memcpy(out.data(), t.data(), out.size()); }});
  }
  edit(tensors);
  const std::string dir =
      (fs::temp_directory_path() / ("whale-qbroken-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  WriteCheckpoint(dir, tensors, 1 << 30);
  fs::copy_file(source + "/config.json", dir + "/config.json");
  EXPECT_NE(ErrorOf([&] { Weights::Load(dir); }).find(fragment), std::string::npos) << fragment;
  fs::remove_all(dir);
}

// Checkpoints quantized before the heads were (BF16 heads next to int8/int4 codes) still load,
// with the float heads mapped as they are.
TEST(QuantCheckpoint, OlderCheckpointsWithFloatHeadsStillLoad) {
  const std::string source = QuantizedDir(StorageType::kFP8, QuantFormat::kInt4);
  const Checkpoint quantized = Checkpoint::Open(source);
  const Checkpoint original = Checkpoint::Open(TinyModelDir("tiny-v3", StorageType::kFP8));
  std::vector<PendingTensor> tensors;
  for (const std::string& name : quantized.Names()) {
    const bool head = name == "lm_head.weight" || name.ends_with("shared_head.head.weight");
    const Tensor t = head ? original.Get(name) : quantized.Get(name);
    tensors.push_back(
        {name, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()),
         [t](std::span<uint8_t> out) { std::memcpy(out.data(), t.data(), out.size()); }});
  }
  const std::string dir =
      (fs::temp_directory_path() / ("whale-qoldhead-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  WriteCheckpoint(dir, tensors, 1 << 30);
  fs::copy_file(source + "/config.json", dir + "/config.json");
  const Weights w = Weights::Load(dir);
  EXPECT_EQ(w.lm_head.dtype, DType::BF16);
  EXPECT_EQ(w.mtp->head.dtype, DType::BF16);
  EXPECT_EQ(w.layers[0].attention.kv_a.dtype, DType::U8);
  EXPECT_EQ(w.lm_head.data, w.checkpoint().Get("lm_head.weight").data());
  const std::string summary = DescribeModel(w.config(), &w.checkpoint());
  EXPECT_NE(summary.find("whale int4, groups of 32"), std::string::npos) << summary;
  fs::remove_all(dir);
}

TEST(QuantCheckpoint, BrokenFilesAreErrorsNamingTheTensor) {
  const std::string o = "model.layers.0.self_attn.o_proj.weight";
  // o_proj is [200, 128]: 25 row blocks of (64 bytes of scales + 4 groups x 256 code bytes).
  ExpectBroken(
      [&](auto& t) {
        for (auto& p : t)
          if (p.name == o) p.shape = {25, 1024};
      },
      "'" + o + "' is I8 [25, 1024]; expected I8 [25, 1088] (whale int8 codes of the [200, 128]");
  ExpectBroken(
      [&](auto& t) {
        t.push_back({o + "_scale", DType::F16, {200, 4}, [](std::span<uint8_t> out) {
                       std::fill(out.begin(), out.end(), uint8_t{0});
                     }});
      },
      "unexpected tensor '" + o + "_scale'");
  ExpectBroken(
      [&](auto& t) {
        for (auto& p : t)
          if (p.name == o) p.dtype = DType::U8;
      },
      "'" + o + "' is U8 [25, 1088]; expected I8 [25, 1088] (whale int8");
  // A head must be int8 codes or the float original, nothing else.
  ExpectBroken(
      [&](auto& t) {
        for (auto& p : t)
          if (p.name == "lm_head.weight") p.dtype = DType::U8;
      },
      "'lm_head.weight' is U8");
}

}  // namespace
}  // namespace whale
