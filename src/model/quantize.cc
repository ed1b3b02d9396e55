#include "model/quantize.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "io/safetensors.h"
#include "kernels/matmul.h"
#include "model/layout.h"
#include "model/weights.h"
#include "util/error.h"
#include "util/progress.h"

namespace whale {
namespace {

constexpr int64_t kRowsPerTask = 64;
static_assert(kRowsPerTask % kQuantRowBlock == 0, "parts must be whole row blocks");

WeightMatrix SourceMatrix(const Checkpoint& checkpoint, const std::string& name) {
  const Tensor t = checkpoint.Get(name);
  WeightMatrix m{t.dtype(), t.data(), t.dim(0), t.dim(1)};
  if (t.dtype() == DType::F8_E4M3)
    m.block_scales = checkpoint.Get(ScaleName(name)).data_as<float>();
  return m;
}

// The stored codes and scales of one weight (kernels/quant.h STORAGE), parts of kRowsPerTask
// rows (whole row blocks) in parallel.
void QuantizeMatrix(const WeightMatrix& source, QuantFormat format, const std::string& name,
                    std::span<uint8_t> stored, ThreadPool& pool) {
  const int64_t rows = source.rows, cols = source.cols;
  const int64_t n_tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  std::mutex mutex;
  std::string error;  // the first failure; exceptions must not leave a pool worker
  pool.ParallelFor(static_cast<size_t>(n_tasks), 1, [&](size_t begin, size_t end, int) {
    std::vector<float> block;  // [kRowsPerTask, cols]
    for (size_t task = begin; task < end; ++task) {
      const int64_t r0 = static_cast<int64_t>(task) * kRowsPerTask;
      const int64_t n_rows = std::min(kRowsPerTask, rows - r0);
      try {
        block.resize(static_cast<size_t>(n_rows * cols));
        DequantizeRows(block, source, r0, r0 + n_rows);
        QuantizeRows(format,
                     stored.subspan((r0 / kQuantRowBlock) * QuantBlockBytes(format, cols),
                                    QuantStoredBytes(format, n_rows, cols)),
                     block, n_rows, cols);
      } catch (const Error& e) {
        // Row numbers from QuantizeRows are relative to the block.
        const std::lock_guard<std::mutex> lock(mutex);
        if (error.empty()) error = Cat("tensor '", name, "' rows from ", r0, ": ", e.what());
      }
    }
  });
  if (!error.empty()) Fail(error);
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) Fail(path, ": write error");
}

}  // namespace

ModelConfig QuantizeCheckpoint(const std::string& in_dir, const std::string& out_dir,
                               QuantFormat format, ThreadPool& pool, bool show_progress) {
  namespace fs = std::filesystem;
  const ModelConfig config = LoadModelConfig(in_dir);
  if (config.block_quantization)
    Fail(in_dir, ": already quantized (whale ", QuantFormatName(config.block_quantization->format),
         "); quantize the F32, BF16 or FP8 original instead");
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(in_dir, out_dir, ec))
    Fail(out_dir, ": the output directory is the input directory");
  Checkpoint checkpoint = Checkpoint::Open(in_dir);
  ValidateCheckpoint(config, checkpoint);
  ModelConfig out_config = config;
  out_config.quantization.reset();
  out_config.block_quantization = BlockQuantization{format, kQuantGroup};
  ValidateModelConfig(out_config, out_dir);

  const Checkpoint* source = &checkpoint;
  std::vector<PendingTensor> pending;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    const std::optional<QuantFormat> tensor_format = BlockQuantizedFormat(spec.role, format);
    if (!tensor_format) {
      const SafetensorsEntry& entry = checkpoint.Entry(spec.name);
      const std::string name = spec.name;
      pending.push_back({name, entry.dtype, entry.shape, [source, name](std::span<uint8_t> out) {
                           std::memcpy(out.data(), source->Get(name).data(), out.size());
                         }});
      continue;
    }
    const std::string name = spec.name;
    ThreadPool* threads = &pool;
    const QuantFormat f = *tensor_format;
    pending.push_back({name, f == QuantFormat::kInt8 ? DType::I8 : DType::U8,
                       BlockQuantizedShape(f, spec.shape),
                       [source, name, f, threads](std::span<uint8_t> out) {
                         QuantizeMatrix(SourceMatrix(*source, name), f, name, out, *threads);
                       }});
  }

  uint64_t max_shard = std::numeric_limits<uint64_t>::max();
  if (checkpoint.n_files() > 1) {
    max_shard = 0;
    for (const std::string& name : checkpoint.Names())
      max_shard = std::max<uint64_t>(max_shard, fs::file_size(checkpoint.FileOf(name)));
  }
  uint64_t total_bytes = 0;
  for (const auto& t : pending) {
    uint64_t n = SizeOf(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    total_bytes += n;
  }
  // kernels/quant.h STORAGE is the full description; this is the summary a reader of the file
  // sees first.
  const std::map<std::string, std::string> metadata = {
      {"whale_quantization",
       Cat(QuantFormatName(format), " (output heads int8), layout rows8: each quantized <name> is ",
           "I8 (int8) or U8 (int4) [ceil(rows/8), block bytes]; a block holds 8 rows, their ",
           "groups of ", kQuantGroup, " columns in quads of 4: 64 bytes of F16 scales ",
           "[4 groups][8 rows], then per group 8 (int8) or 4 (int4) chunks of 32 bytes, chunk k ",
           "holding row r's 4 codes (int8: columns 4k..4k+3; int4: group bytes 4k..4k+3, low ",
           "nibble element i, high nibble element i+16) at bytes 4r..4r+3; w = code * scale ",
           "(int4: (nibble - 8) * scale); padding rows have zero codes and scales")}};

  fs::create_directories(out_dir);
  std::shared_ptr<ProgressLine> progress;
  if (show_progress) {
    progress = std::make_shared<ProgressLine>("quantizing to " + out_dir, total_bytes, "B");
    auto done = std::make_shared<uint64_t>(0);
    for (auto& t : pending)
      t.fill = [inner = t.fill, progress, done](std::span<uint8_t> out) {
        inner(out);
        *done += out.size();
        progress->Update(static_cast<double>(*done));
      };
  }
  WriteCheckpoint(out_dir, pending, max_shard, metadata);
  if (progress) progress->Finish();
  WriteText((fs::path(out_dir) / "config.json").string(), ModelConfigToJson(out_config));
  for (const auto& entry : fs::directory_iterator(in_dir)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || file == "config.json" ||
        entry.path().extension() == ".safetensors" || file == "model.safetensors.index.json")
      continue;
    fs::copy_file(entry.path(), fs::path(out_dir) / file, fs::copy_options::overwrite_existing);
  }
  return out_config;
}

}  // namespace whale
