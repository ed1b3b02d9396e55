#include "model/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/layout.h"
#include "tensor/dtype.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/split_mix.h"

namespace whale {
namespace {

uint64_t HashName(const std::string& name, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ULL ^ SplitMix64(seed);  // FNV-1a, seeded
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001B3ULL;
  return SplitMix64(h);
}

// Element i of a tensor: uniform in [center - half_width, center + half_width).
struct Distribution {
  uint64_t stream;
  float center;
  float half_width;
  float operator()(uint64_t i) const {
    const double u = static_cast<double>(SplitMix64(stream + i) >> 11) * 0x1.0p-53;
    return static_cast<float>(center + half_width * (2.0 * u - 1.0));
  }
};

// Uniform weights with standard deviation `std` have half-width std * sqrt(3).
Distribution DistributionFor(const TensorSpec& t, uint64_t seed) {
  const uint64_t stream = HashName(t.name, seed);
  const float sqrt3 = std::sqrt(3.0f);
  const auto fan_in = [&] { return static_cast<float>(t.shape.back()); };
  switch (t.role) {
    case TensorRole::kEmbedding:
      return {stream, 0.0f, sqrt3};  // unit variance: the residual stream starts at O(1)
    case TensorRole::kNorm:
      return {stream, 1.0f, 0.25f};  // not all ones, so a skipped norm weight shows
    case TensorRole::kRouterBias:
      return {stream, 0.0f, 0.1f};  // comparable to score gaps: biases change the selection
    default:
      return {stream, 0.0f, sqrt3 / std::sqrt(fan_in())};  // keeps activations O(1)
  }
}

DType StoredType(const TensorSpec& t, StorageType storage) {
  if (t.role == TensorRole::kRouterBias || storage == StorageType::kF32) return DType::F32;
  if (storage == StorageType::kFP8 && t.role == TensorRole::kLinear) return DType::F8_E4M3;
  return DType::BF16;
}

constexpr int64_t kBlock = 128;

// Fills rows [row_begin, row_end) of the weight into `out` as F32.
void Generate(std::span<float> out, const Distribution& dist, int64_t cols, int64_t row_begin,
              int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[(r - row_begin) * cols + c] = dist(static_cast<uint64_t>(r * cols + c));
}

// Block scale = amax / 448 so that the largest element of the block maps to the largest finite
// e4m3 value; an all-zero block gets scale 1.
std::vector<float> BlockScales(std::span<const float> rows, int64_t n_rows, int64_t cols) {
  const int64_t n_col_blocks = (cols + kBlock - 1) / kBlock;
  std::vector<float> scales(n_col_blocks);
  for (int64_t b = 0; b < n_col_blocks; ++b) {
    float amax = 0;
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t c = b * kBlock; c < std::min(cols, (b + 1) * kBlock); ++c)
        amax = std::max(amax, std::fabs(rows[r * cols + c]));
    scales[b] = amax > 0 ? amax / kF8E4M3Max : 1.0f;
  }
  return scales;
}

// Generates the weight 128 rows at a time (one FP8 row of scale blocks), in parallel, and hands
// each block's F32 values [n_rows, cols] to `use`.
template <typename Use>
void ForEachRowBlock(const TensorSpec& t, uint64_t seed, ThreadPool& pool, const Use& use) {
  const Distribution dist = DistributionFor(t, seed);
  const int64_t cols = t.shape.back();
  const int64_t rows = t.numel() / std::max<int64_t>(cols, 1);
  pool.ParallelFor((rows + kBlock - 1) / kBlock, 1, [&](size_t begin, size_t end, int) {
    std::vector<float> block;
    for (size_t rb = begin; rb < end; ++rb) {
      const int64_t r0 = rb * kBlock;
      const int64_t n_rows = std::min(rows, r0 + kBlock) - r0;
      block.resize(n_rows * cols);
      Generate(block, dist, cols, r0, r0 + n_rows);
      use(static_cast<int64_t>(rb), std::span<float>(block), n_rows);
    }
  });
}

void FillTensor(std::span<uint8_t> out, const TensorSpec& t, DType dtype, uint64_t seed,
                ThreadPool& pool) {
  const int64_t cols = t.shape.back();
  ForEachRowBlock(t, seed, pool, [&](int64_t rb, std::span<float> block, int64_t n_rows) {
    if (dtype == DType::F8_E4M3) {
      const std::vector<float> scales = BlockScales(block, n_rows, cols);
      for (int64_t i = 0; i < n_rows * cols; ++i) block[i] /= scales[(i % cols) / kBlock];
    }
    ConvertFromF32(dtype, block, out.data() + rb * kBlock * cols * SizeOf(dtype));
  });
}

void FillScales(std::span<uint8_t> out, const TensorSpec& t, uint64_t seed, ThreadPool& pool) {
  const int64_t cols = t.shape[1];
  const int64_t n_col_blocks = (cols + kBlock - 1) / kBlock;
  float* scales = reinterpret_cast<float*>(out.data());  // [n_row_blocks, n_col_blocks]
  ForEachRowBlock(t, seed, pool, [&](int64_t rb, std::span<float> block, int64_t n_rows) {
    const std::vector<float> row_scales = BlockScales(block, n_rows, cols);
    std::copy(row_scales.begin(), row_scales.end(), scales + rb * n_col_blocks);
  });
}

}  // namespace

StorageType ParseStorageType(const std::string& name) {
  if (name == "f32") return StorageType::kF32;
  if (name == "bf16") return StorageType::kBF16;
  if (name == "fp8") return StorageType::kFP8;
  Fail("unknown storage dtype '", name, "' (expected f32, bf16 or fp8)");
}

ModelConfig WriteRandomCheckpoint(ModelConfig config, const RandomCheckpointOptions& options,
                                  const std::string& out_dir, ThreadPool& pool) {
  config.quantization.reset();
  switch (options.storage) {
    case StorageType::kF32:
      config.torch_dtype = "float32";
      break;
    case StorageType::kBF16:
      config.torch_dtype = "bfloat16";
      break;
    case StorageType::kFP8:
      config.torch_dtype = "bfloat16";
      config.quantization = Fp8Quantization{};
      break;
  }
  ValidateModelConfig(config, "preset");
  std::filesystem::create_directories(out_dir);
  WriteTextFile((std::filesystem::path(out_dir) / "config.json").string(),
                ModelConfigToJson(config));
  if (options.config_only) return config;

  std::vector<PendingTensor> pending;
  uint64_t total_bytes = 0;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    const DType dtype = StoredType(spec, options.storage);
    const uint64_t seed = options.seed;
    pending.push_back(
        {spec.name, dtype, spec.shape, [spec, dtype, seed, &pool](std::span<uint8_t> out) {
           FillTensor(out, spec, dtype, seed, pool);
         }});
    if (dtype == DType::F8_E4M3)
      pending.push_back(
          {ScaleName(spec.name), DType::F32, ScaleShape(spec.shape, kBlock, kBlock),
           [spec, seed, &pool](std::span<uint8_t> out) { FillScales(out, spec, seed, pool); }});
  }
  for (const auto& t : pending) {
    uint64_t n = SizeOf(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    total_bytes += n;
  }
  if (options.show_progress) {
    // Wrap every fill so the line advances as tensors are produced.
    auto progress = std::make_shared<ProgressLine>("writing " + out_dir, total_bytes, "B");
    auto done = std::make_shared<uint64_t>(0);
    for (auto& t : pending) {
      t.fill = [inner = t.fill, progress, done](std::span<uint8_t> out) {
        inner(out);
        *done += out.size();
        progress->Update(static_cast<double>(*done));
      };
    }
    WriteCheckpoint(out_dir, pending, options.max_shard_bytes);
    progress->Finish();
  } else {
    WriteCheckpoint(out_dir, pending, options.max_shard_bytes);
  }
  return config;
}

}  // namespace whale
