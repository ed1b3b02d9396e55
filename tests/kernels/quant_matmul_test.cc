// Fast int8 / int4 matrix products against their references, on every SIMD target.
#include "kernels/quant_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/quant.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;  // unit roundoff of F32
constexpr int64_t kCols[] = {1, 31, 32, 33, 127, 129, 288, 300, 4095};
// 61 and 67 rows: 8 and 9 row blocks, so the one-token kernel's four streams get two blocks each,
// the partial block last in the fourth stream or alone after them.
constexpr int64_t kRows[] = {1, 5, 8, 9, 33, 61, 67};
constexpr int64_t kTokens[] = {1, 2, 3, 7};

struct TestWeight {
  DType dtype;
  int64_t rows, cols;
  std::vector<uint8_t> stored;  // codes and scales (kernels/quant.h STORAGE)
  WeightMatrix matrix() const { return {dtype, stored.data(), rows, cols}; }
  float scale(int64_t r, int64_t g) const {
    const int64_t at =
        QuantScaleIndex(dtype == DType::I8 ? QuantFormat::kInt8 : QuantFormat::kInt4, cols, r, g);
    return F16ToF32(static_cast<uint16_t>(stored[at] | stored[at + 1] << 8));
  }
};

// Codes drawn uniformly from the whole byte range (int8 -128 included, which the quantizer never
// writes but the kernels must handle), padding zero as the format requires; F16 scales of both
// signs over several binades.
TestWeight RandomCodes(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
  const QuantFormat format = dtype == DType::I8 ? QuantFormat::kInt8 : QuantFormat::kInt4;
  const int64_t groups = QuantGroups(cols);
  TestWeight w{dtype, rows, cols, std::vector<uint8_t>(QuantStoredBytes(format, rows, cols))};
  std::uniform_int_distribution<int> byte(0, 255);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < groups * kQuantGroup; ++k) {
      const bool pad = k >= cols;
      bool high = false;
      uint8_t& stored = w.stored[QuantCodeIndex(format, cols, r, k, &high)];
      if (format == QuantFormat::kInt8) {
        stored = pad ? 0 : static_cast<uint8_t>(byte(rng));
      } else {
        const int code = pad ? 8 : byte(rng) & 15;
        stored = static_cast<uint8_t>(stored | (high ? code << 4 : code));
      }
    }
  std::uniform_real_distribution<float> scale(0.5f, 1.0f);
  std::uniform_int_distribution<int> exponent(-14, -6);
  for (int64_t r = 0; r < rows; ++r) {  // rows of the last block past `rows` keep scale 0
    for (int64_t g = 0; g < groups; ++g) {
      const uint16_t bits =
          F32ToF16(scale(rng) * std::ldexp(byte(rng) & 1 ? 1.0f : -1.0f, exponent(rng)));
      const int64_t at = QuantScaleIndex(format, cols, r, g);
      w.stored[at] = static_cast<uint8_t>(bits & 0xFF);
      w.stored[at + 1] = static_cast<uint8_t>(bits >> 8);
    }
  }
  return w;
}

std::vector<float> RandomActivations(int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(count);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 97 == 13 ? 20.0f : normal(rng);  // outliers
  return x;
}

// Σ_k |scale| (|code| + offset) |a_k| per (token, row): bounds every partial sum the fast kernel
// forms (the int4 kernel sums codes and the -8 offset separately), with a_k the quantized
// activation.
std::vector<double> AbsoluteSums(const TestWeight& w, const std::vector<float>& x, int64_t n) {
  const bool int4 = w.dtype == DType::U8;
  const int64_t groups = QuantGroups(w.cols);
  std::vector<float> deq(w.rows * w.cols);
  DequantizeRowsQuant(deq, w.matrix(), 0, w.rows);
  std::vector<int8_t> q(groups * 32);
  std::vector<float> d(groups);
  std::vector<int32_t> sum(groups);
  std::vector<double> out(n * w.rows);
  for (int64_t t = 0; t < n; ++t) {
    QuantizeActivationRow(q.data(), d.data(), sum.data(), x.data() + t * w.cols, w.cols);
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t k = 0; k < w.cols; ++k) {
        const double scale = std::abs(w.scale(r, k / 32));
        const double a = std::abs(q[k] * static_cast<double>(d[k / 32]));
        s += int4 ? (std::abs(deq[r * w.cols + k]) + 8 * scale) * a
                  : std::abs(deq[r * w.cols + k]) * a;
      }
      out[t * w.rows + r] = s;
    }
  }
  return out;
}

using MatMulFn = void (*)(std::span<float>, std::span<const float>, int64_t, const WeightMatrix&,
                          ThreadPool*);

class QuantMatMulTest : public ::testing::TestWithParam<DType> {
 protected:
  MatMulFn fast() const { return GetParam() == DType::I8 ? MatMulInt8 : MatMulInt4; }
};

// Fast vs reference: the integer group dots are exact in both, so they differ only by F32
// rounding: the product of the two scales (one rounding), the scaled dot's accumulation into
// one of 8 lanes (groups / 8 + 1 roundings) and the 3-level horizontal sum; each rounding is at
// most 2^-24 of a partial sum bounded by the absolute sum. (groups + 16) roundings covers all.
TEST_P(QuantMatMulTest, MatchesReferenceOnEveryTarget) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    // quant_matmul.cc compiles every target matmul_simd.cc does (kernels/simd_targets.h), so
    // forcing one must run exactly that one; a mismatch would test a target twice under
    // another name.
    const bool forced = std::string(QuantMatMulTarget()) == SimdTargetName(target);
    EXPECT_TRUE(forced) << "forced " << SimdTargetName(target) << ", ran " << QuantMatMulTarget();
    if (!forced) continue;
    std::printf("[quant] testing target %s\n", QuantMatMulTarget());
    for (int64_t cols : kCols)
      for (int64_t rows : kRows)
        for (int64_t n : kTokens) {
          if (cols == 4095 && rows * n > 40) continue;  // keeps the reference quick
          SCOPED_TRACE(Cat(SimdTargetName(target), " ", Name(GetParam()), " rows ", rows, " cols ",
                           cols, " n ", n));
          const TestWeight w = RandomCodes(GetParam(), rows, cols, rng);
          const std::vector<float> x = RandomActivations(n * cols, rng);
          std::vector<float> y(n * rows), y2(n * rows), ref(n * rows);
          fast()(y, x, n, w.matrix(), nullptr);
          fast()(y2, x, n, w.matrix(), &pool);
          MatMulQuantRef(ref, x, n, w.matrix());
          const std::vector<double> abs_sum = AbsoluteSums(w, x, n);
          const double roundings = static_cast<double>(QuantGroups(cols) + 16);
          for (int64_t i = 0; i < n * rows; ++i) {
            ASSERT_LE(std::abs(static_cast<double>(y[i]) - ref[i]),
                      roundings * kF32Epsilon * abs_sum[i] + 1e-30)
                << "output " << i << " fast " << y[i] << " ref " << ref[i];
            // Each output is computed by one thread in the same order whatever the split.
            ASSERT_EQ(y[i], y2[i]) << "output " << i;
          }
        }
  }
  ForceSimdTarget(0);
}

// Many tokens (crossing the kernel's token blocks) and rows (several tasks per thread).
TEST_P(QuantMatMulTest, BatchMatchesReference) {
  std::mt19937 rng(23);
  ThreadPool pool(2);
  const int64_t rows = 70, cols = 200, n = 131;
  const TestWeight w = RandomCodes(GetParam(), rows, cols, rng);
  const std::vector<float> x = RandomActivations(n * cols, rng);
  std::vector<float> y(n * rows), ref(n * rows);
  fast()(y, x, n, w.matrix(), &pool);
  MatMulQuantRef(ref, x, n, w.matrix());
  const std::vector<double> abs_sum = AbsoluteSums(w, x, n);
  for (int64_t i = 0; i < n * rows; ++i)
    ASSERT_LE(std::abs(static_cast<double>(y[i]) - ref[i]),
              (QuantGroups(cols) + 16) * kF32Epsilon * abs_sum[i])
        << i;
}

// Against the F32 product with the dequantized weight: the activation quantization error
// |x_k - a_k| <= d_g / 2 (times 1 + 2^-20 for the F32 rounding of x · 127 / amax) bounds the
// difference by Σ_k |w_k| d_g / 2, plus the rounding allowance of the test above.
TEST_P(QuantMatMulTest, ActivationQuantizationErrorIsBounded) {
  std::mt19937 rng(29);
  const int64_t rows = 9, cols = 300, n = 3;
  const TestWeight w = RandomCodes(GetParam(), rows, cols, rng);
  const std::vector<float> x = RandomActivations(n * cols, rng);
  std::vector<float> deq(rows * cols), y(n * rows);
  DequantizeRowsQuant(deq, w.matrix(), 0, rows);
  fast()(y, x, n, w.matrix(), nullptr);
  const std::vector<double> abs_sum = AbsoluteSums(w, x, n);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> half_step(QuantGroups(cols));
    for (int64_t k = 0; k < cols; ++k)
      half_step[k / 32] =
          std::max(half_step[k / 32], std::abs(static_cast<double>(x[t * cols + k])));
    for (double& h : half_step) h = h / 127 / 2 * (1 + 0x1p-20);
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, bound = 0;
      for (int64_t k = 0; k < cols; ++k) {
        exact += static_cast<double>(deq[r * cols + k]) * x[t * cols + k];
        bound += std::abs(deq[r * cols + k]) * half_step[k / 32];
      }
      bound += (QuantGroups(cols) + 16) * kF32Epsilon * abs_sum[t * rows + r];
      EXPECT_LE(std::abs(y[t * rows + r] - exact), bound) << t << " " << r;
    }
  }
}

TEST_P(QuantMatMulTest, ZeroAndNonFiniteActivations) {
  std::mt19937 rng(31);
  const TestWeight w = RandomCodes(GetParam(), 4, 64, rng);
  std::vector<float> x(2 * 64, 0.0f), y(2 * 4, 1.0f);
  x[64 + 40] = std::numeric_limits<float>::infinity();
  fast()(y, x, 2, w.matrix(), nullptr);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(y[r], 0.0f);
    EXPECT_TRUE(std::isnan(y[4 + r]));
  }
}

TEST_P(QuantMatMulTest, BadArgumentsAreErrors) {
  std::mt19937 rng(37);
  const TestWeight w = RandomCodes(GetParam(), 3, 40, rng);
  std::vector<float> x(40), y(3), y_short(2);
  EXPECT_THROW(fast()(y_short, x, 1, w.matrix(), nullptr), Error);
  WeightMatrix no_data = w.matrix();
  no_data.data = nullptr;
  EXPECT_THROW(fast()(y, x, 1, no_data, nullptr), Error);
  WeightMatrix wrong = w.matrix();
  wrong.dtype = GetParam() == DType::I8 ? DType::U8 : DType::I8;
  EXPECT_THROW(fast()(y, x, 1, wrong, nullptr), Error);
  wrong.dtype = DType::F32;
  EXPECT_THROW(ValidateQuantWeight(wrong, "test"), Error);
  EXPECT_THROW(MatMulQuantRef(y_short, x, 1, w.matrix()), Error);
  std::vector<float> out(3 * 40);
  EXPECT_THROW(DequantizeRowsQuant(out, w.matrix(), 1, 4), Error);
}

// y = x · W[begin:end] (MatMulUntransposed on int8 / int4 rows) against its reference, on every
// target, over ranges that start and end inside 8-row blocks. Output j sums the range's rows:
// each coefficient x_i · scale_ig is rounded once, each term is added to one of two lanes (one
// rounding each), and the lanes are added; int4 also adds -8 · Σ_i coefficient, summed in 8
// lanes per row block. Every rounding is at most 2^-24 of a partial sum bounded by S_j = Σ_i
// |x_i| |w_ij| (int4: Σ_i |x_i| |scale_ig| · 24, which covers the code sum (codes <= 15) and the
// offset (8) apart), so (rows + 16) roundings of S_j cover all. The rows of a block outside the
// range must not be read from x (ASan) nor counted.
TEST_P(QuantMatMulTest, UntransposedMatchesReferenceOnEveryTarget) {
  const bool int4 = GetParam() == DType::U8;
  std::mt19937 rng(41);
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    for (auto [total, begin, end] : {std::tuple<int64_t, int64_t, int64_t>{1, 0, 1},
                                     {5, 0, 5},
                                     {9, 0, 9},
                                     {33, 3, 30},
                                     {40, 8, 16},
                                     {128, 0, 128},
                                     {140, 5, 133}})
      for (int64_t cols : {1, 31, 32, 33, 127, 129, 300, 512})
        for (int64_t n : {1, 2, 3, 4, 5, 9}) {
          const int64_t rows = end - begin;
          if (rows * cols * n > 200000) continue;  // keeps the reference quick under ASan
          SCOPED_TRACE(Cat(SimdTargetName(target), " ", Name(GetParam()), " rows ", begin, "..",
                           end, " of ", total, " cols ", cols, " n ", n));
          const TestWeight w = RandomCodes(GetParam(), total, cols, rng);
          const std::vector<float> x = RandomActivations(n * rows, rng);
          std::vector<float> deq(total * cols), y(n * cols, -1.0f), ref(n * cols);
          DequantizeRowsQuant(deq, w.matrix(), 0, total);
          MatMulUntransposed(y, x, n, w.matrix(), begin, end);
          MatMulUntransposedRef(ref, x, n, w.matrix(), begin, end);
          for (int64_t t = 0; t < n; ++t)
            for (int64_t j = 0; j < cols; ++j) {
              double bound = 0;
              for (int64_t i = begin; i < end; ++i) {
                const double weight =
                    int4 ? 24 * std::abs(w.scale(i, j / kQuantGroup)) : std::abs(deq[i * cols + j]);
                bound += std::abs(static_cast<double>(x[t * rows + i - begin])) * weight;
              }
              const float fast = y[t * cols + j], want = ref[t * cols + j];
              ASSERT_LE(std::abs(static_cast<double>(fast) - want),
                        static_cast<double>(rows + 16) * kF32Epsilon * bound + 1e-30)
                  << "token " << t << " column " << j << " fast " << fast << " ref " << want;
            }
        }
  }
  ForceSimdTarget(0);
}

std::string FormatName(const ::testing::TestParamInfo<DType>& param) {
  return std::string(Name(param.param));
}
INSTANTIATE_TEST_SUITE_P(Formats, QuantMatMulTest, ::testing::Values(DType::I8, DType::U8),
                         FormatName);

}  // namespace
}  // namespace whale
