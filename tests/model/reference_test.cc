// whale's forward pass against the independent PyTorch reference (tools/reference/): logits at
// every position and MTP draft logits for fixed token sequences, for tiny-v3 in F32, BF16 and
// FP8 and for tiny-v2. The checkpoints are regenerated with `whale init`'s code and their digest
// checked first; tools/reference/make_forward_fixtures.sh refreshes the fixtures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "model/model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = std::string(WHALE_TEST_DATA) + "/forward";

std::vector<float> ReadFloats(const std::string& path) {
  const std::string bytes = ReadTextFile(path);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

uint64_t Fnv1a64(const std::string& path) {
  const MappedFile file(path);
  uint64_t h = 0xCBF29CE484222325ULL;
  for (uint8_t b : file.bytes()) h = (h ^ b) * 0x100000001B3ULL;
  return h;
}

// The reference computes in float64 and rounds the logits once; whale computes in F32. Their
// distance is F32 rounding through 3 layers: the reference's own F32 mode differs from its
// float64 mode by at most 6e-6 on these models (fixture.json self_check) with logits of scale
// ~4, i.e. ~1.5e-6 relative. 1e-4 relative to the largest |logit| leaves a margin of ~60x while
// any real mistake (rope pairing, mscale, YaRN, MTP order) moves logits by more than 1 (see
// tools/reference/README.md).
constexpr float kTolerance = 1e-4f;

void ExpectClose(std::span<const float> actual, std::span<const float> expected,
                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  float scale = 0, worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    scale = std::max(scale, std::fabs(expected[i]));
    const float diff = std::fabs(actual[i] - expected[i]);
    if (!(diff <= worst)) {  // also catches NaN
      worst = diff;
      worst_at = i;
    }
  }
  EXPECT_LE(worst, kTolerance * scale)
      << what << ": worst at flat index " << worst_at << " (whale " << actual[worst_at]
      << ", reference " << expected[worst_at] << ", logit scale " << scale << ")";
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, LogitsAndMtpDraftsMatch) {
  const std::string folder = kFixtures + "/" + GetParam();
  const auto fixture = nlohmann::json::parse(ReadTextFile(folder + "/fixture.json"));
  ASSERT_EQ(fixture.at("format"), "whale-forward-fixture");
  ASSERT_EQ(fixture.at("version"), 1);
  const auto& made = fixture.at("checkpoint");

  // Rebuild the checkpoint the fixture was computed from.
  const std::string dir =
      (fs::temp_directory_path() / ("whale-ref-" + std::to_string(::getpid()) + GetParam()))
          .string();
  ThreadPool pool(2);
  RandomCheckpointOptions options;
  options.storage = ParseStorageType(made.at("dtype"));
  options.seed = made.at("seed");
  WriteRandomCheckpoint(FindPreset(made.at("preset")).config, options, dir, pool);
  char digest[17];
  std::snprintf(digest, sizeof(digest), "%016llx",
                static_cast<unsigned long long>(Fnv1a64(dir + "/model.safetensors")));
  ASSERT_EQ(std::string(digest), made.at("model_safetensors_fnv1a64"))
      << "`" << made.at("command").get<std::string>()
      << "` no longer writes the checkpoint the fixture was made from; if that change is "
         "intended, rerun tools/reference/make_forward_fixtures.sh";
  ASSERT_EQ(ReadTextFile(dir + "/config.json"), ReadTextFile(folder + "/config.json"));

  const Weights weights = Weights::Load(dir);
  const int64_t vocab = weights.config().vocab_size;
  const int64_t d = weights.config().hidden_size;
  for (AttentionForm form : {AttentionForm::kAbsorbed, AttentionForm::kNaive}) {
    Model model(weights, pool, {.max_batch_tokens = 64, .max_context = 64, .attention = form});
    const auto& sequences = fixture.at("sequences");
    for (size_t s = 0; s < sequences.size(); ++s) {
      const std::vector<int32_t> tokens = sequences[s].get<std::vector<int32_t>>();
      const std::string name = GetParam() + (form == AttentionForm::kNaive ? " naive" : "") +
                               " sequence " + std::to_string(s);
      KvCache cache = model.NewCache(64);
      std::vector<float> logits(tokens.size() * vocab), hidden(tokens.size() * d);
      SequenceChunk chunk{&cache, tokens, true};
      model.Forward({&chunk, 1}, logits, hidden);
      ExpectClose(logits, ReadFloats(folder + "/" + fixture.at("logits")[s].get<std::string>()),
                  name + " logits");
      if (!fixture.contains("mtp_logits") || fixture["mtp_logits"].empty()) continue;
      const size_t n = tokens.size() - 1;
      KvCache mtp_cache = model.NewMtpCache(64);
      std::vector<float> drafts(n * vocab);
      SequenceChunk next{&mtp_cache, std::span(tokens).subspan(1), true};
      model.ForwardMtp({&next, 1}, std::span(hidden).first(n * d), drafts);
      ExpectClose(drafts,
                  ReadFloats(folder + "/" + fixture["mtp_logits"][s].get<std::string>()),
                  name + " MTP draft logits");
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceTest,
                         ::testing::Values("tiny-v3-f32", "tiny-v3-bf16", "tiny-v3-fp8",
                                           "tiny-v2-f32"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string name = p.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace whale
