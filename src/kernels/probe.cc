#include "kernels/probe.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPiece = size_t{8} << 20;  // claimed per thread at a time

// An anonymous mapping aligned to 2 MiB (so that whole huge pages back it), unmapped on exit.
class HugeBuffer {
 public:
  explicit HugeBuffer(size_t bytes) : bytes_((bytes + kHugePage - 1) / kHugePage * kHugePage) {
    mapped_bytes_ = bytes_ + kHugePage;
    mapping_ =
        mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping_ == MAP_FAILED)
      Fail("MeasureReadBandwidth: cannot map ", mapped_bytes_ >> 20,
           " MiB: ", std::strerror(errno));
    const auto address = reinterpret_cast<uintptr_t>(mapping_);
    data_ = reinterpret_cast<uint8_t*>((address + kHugePage - 1) / kHugePage * kHugePage);
    // Advisory: without transparent huge pages the probe still runs, a little slower (~15 %).
    madvise(data_, bytes_, MADV_HUGEPAGE);
  }
  ~HugeBuffer() { munmap(mapping_, mapped_bytes_); }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  uint8_t* data() { return data_; }
  size_t size() const { return bytes_; }

 private:
  size_t bytes_;
  size_t mapped_bytes_ = 0;
  void* mapping_ = nullptr;
  uint8_t* data_ = nullptr;
};

double Seconds(std::chrono::steady_clock::time_point begin) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
}

}  // namespace

// Vectors of the GCC/Clang vector extension, as wide as the build's target loads at once. A
// 64-byte vector on AVX2 went through the stack (GCC 12 moved each half out to scalar registers
// and back): whale's probe then read 15-17 GB/s on one Zen 2 core, where 32-byte loads read 21-22.
#if defined(__AVX512F__)
using ProbeVector = uint64_t __attribute__((vector_size(64)));
#else
using ProbeVector = uint64_t __attribute__((vector_size(32)));
#endif

uint64_t ReadFourStreams(const uint8_t* p, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(p) % 64 != 0 || bytes % 256 != 0)
    Fail("ReadFourStreams: ", bytes, " bytes at an address ", reinterpret_cast<uintptr_t>(p) % 64,
         " bytes past a 64-byte boundary; expected a 64-byte aligned start and a multiple of 256");
  using Vector = ProbeVector;
  constexpr size_t kPerLine = 64 / sizeof(Vector);  // one accumulator each per stream
  const Vector* v = reinterpret_cast<const Vector*>(__builtin_assume_aligned(p, 64));
  const size_t quarter = bytes / 64 / 4;  // 64-byte steps per stream
  const Vector* stream[4] = {v, v + quarter * kPerLine, v + 2 * quarter * kPerLine,
                             v + 3 * quarter * kPerLine};
  Vector acc[4][kPerLine] = {};
  for (size_t i = 0; i < quarter; ++i)
    for (int s = 0; s < 4; ++s)
      for (size_t j = 0; j < kPerLine; ++j) acc[s][j] ^= stream[s][i * kPerLine + j];
  Vector all = {};
  for (int s = 0; s < 4; ++s)
    for (size_t j = 0; j < kPerLine; ++j) all ^= acc[s][j];
  uint64_t out = 0;
  for (size_t i = 0; i < sizeof(Vector) / sizeof(uint64_t); ++i) out ^= all[i];
  return out;
}

double MeasureReadBandwidth(ThreadPool* pool, const ReadBandwidthOptions& options) {
  if (options.repeats < 1) Fail("MeasureReadBandwidth: repeats = ", options.repeats, " < 1");
  HugeBuffer buffer(std::max(options.bytes, kPiece));
  const size_t n_pieces = buffer.size() / kPiece;
  const auto for_pieces = [&](auto&& body) {
    const auto run = [&](size_t begin, size_t end, int) {
      for (size_t i = begin; i < end; ++i) body(buffer.data() + i * kPiece);
    };
    if (pool == nullptr)
      run(0, n_pieces, 0);
    else
      pool->ParallelFor(n_pieces, 1, run);
  };
  // First touch by the reading threads (NUMA placement), with non-zero data.
  for_pieces([](uint8_t* p) { std::memset(p, 0x5A, kPiece); });
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int r = 0; r < options.repeats; ++r) {
    const auto begin = std::chrono::steady_clock::now();
    for_pieces(
        [&](uint8_t* p) { sink.fetch_xor(ReadFourStreams(p, kPiece), std::memory_order_relaxed); });
    best = std::max(best, static_cast<double>(n_pieces * kPiece) / Seconds(begin) * 1e-9);
  }
  // 0x5A5A... XORed an even number of times per piece is zero; this keeps the loads alive.
  if (sink.load() == 1) Fail("MeasureReadBandwidth: impossible checksum");
  return best;
}

double MeasureMatMulPeak(DType dtype, ThreadPool* pool, const MatMulPeakOptions& options) {
  const bool quantized = dtype == DType::I8 || dtype == DType::U8;
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F8_E4M3 && !quantized)
    Fail("MeasureMatMulPeak: dtype ", Name(dtype), " is not measured (expected F32, BF16, ",
         "F8_E4M3, I8 or U8)");
  if (options.tokens < 1 || options.rows < 1 || options.cols < 1 || options.repeats < 1)
    Fail("MeasureMatMulPeak: tokens, rows, cols and repeats must be positive");
  const int64_t rows = options.rows, cols = options.cols, n = options.tokens;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (float& v : values) v = normal(rng) * (dtype == DType::F8_E4M3 ? 32.0f : 1.0f);
  // Whale's block formats (kernels/quant.h) are quantized from the same values.
  const QuantFormat format = dtype == DType::I8 ? QuantFormat::kInt8 : QuantFormat::kInt4;
  std::vector<uint8_t> data(quantized ? static_cast<size_t>(QuantStoredBytes(format, rows, cols))
                                      : values.size() * SizeOf(dtype));
  if (quantized)
    QuantizeRows(format, data, values, rows, cols);
  else
    ConvertFromF32(dtype, values, data.data());
  const int64_t grid = ((rows + 127) / 128) * ((cols + 127) / 128);
  std::vector<float> scales(dtype == DType::F8_E4M3 ? grid : 0, 1.0f / 32);
  // As the loader does, FP8 codes are checked for NaN once, so the kernels skip their check.
  const WeightMatrix w{dtype,
                       data.data(),
                       rows,
                       cols,
                       scales.empty() ? nullptr : scales.data(),
                       dtype == DType::F8_E4M3 && !Fp8HasNanCode(data)};
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  for (float& v : x) v = normal(rng);
  MatMul(y, x, n, w, pool);  // warm-up: page faults, thread-local scratch
  double best = 0.0;
  for (int r = 0; r < options.repeats; ++r) {
    const auto begin = std::chrono::steady_clock::now();
    MatMul(y, x, n, w, pool);
    best = std::max(best, 2.0 * static_cast<double>(n * rows * cols) / Seconds(begin) * 1e-9);
  }
  return best;
}

}  // namespace whale
