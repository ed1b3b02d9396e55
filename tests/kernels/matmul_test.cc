#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/fp8_table.h"
#include "kernels/simd.h"
#include "util/error.h"

namespace whale {
namespace {

constexpr double kF32Epsilon = 0x1p-24;  // unit roundoff of F32 (half an ulp of 1)
constexpr int64_t kSizes[] = {1, 31, 32, 33, 127, 128, 129, 200, 300};

// Owns a weight's bytes and scales; matrix() views them.
struct TestWeight {
  DType dtype;
  int64_t rows, cols;
  std::vector<uint8_t> data;
  std::vector<float> scales;
  bool fp8_nan_free = false;  // FP8: the loader's promise that no code is NaN (it never is here)
  WeightMatrix matrix() const {
    return {dtype, data.data(), rows, cols, scales.empty() ? nullptr : scales.data(), fp8_nan_free};
  }
};

int64_t ScaleBlocks(int64_t n) {
  return (n + kWeightScaleBlock - 1) / kWeightScaleBlock;
}

// F32 and BF16 weights from N(0, 1). FP8 codes drawn uniformly from all 254 finite codes
// (subnormals and ±448 included), with one scale per block: any positive F32 or, when
// power_of_two_scales, a power of two (then every dequantized element is exact).
TestWeight RandomWeight(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng,
                        bool power_of_two_scales = false) {
  TestWeight w{dtype, rows, cols, std::vector<uint8_t>(rows * cols * SizeOf(dtype)), {}};
  if (dtype == DType::F8_E4M3) {
    std::uniform_int_distribution<int> code(0, 253);
    for (auto& byte : w.data) {
      const int c = code(rng);  // skip the NaN codes 0x7F and 0xFF
      byte = static_cast<uint8_t>(c < 0x7F ? c : c + 1);
    }
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    std::uniform_int_distribution<int> exponent(-12, -4);
    w.scales.resize(ScaleBlocks(rows) * ScaleBlocks(cols));
    for (float& s : w.scales)
      s = power_of_two_scales ? std::ldexp(1.0f, exponent(rng)) : scale(rng);
    return w;
  }
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(rows * cols);
  for (float& v : values) v = normal(rng);
  ConvertFromF32(dtype, values, w.data.data());
  return w;
}

std::vector<float> RandomActivations(int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(count);
  for (float& v : x) v = uniform(rng);
  return x;
}

// Σ_k |x[t, k] · W[i, k]| for every (t, i): the scale of a dot product's rounding error.
std::vector<double> AbsProducts(const std::vector<float>& x, int64_t n, const TestWeight& w) {
  std::vector<float> dense(w.rows * w.cols);
  DequantizeRows(dense, w.matrix(), 0, w.rows);
  std::vector<double> out(n * w.rows);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < w.rows; ++i) {
      double sum = 0.0;
      for (int64_t k = 0; k < w.cols; ++k)
        sum += std::fabs(static_cast<double>(x[t * w.cols + k]) * dense[i * w.cols + k]);
      out[t * w.rows + i] = sum;
    }
  return out;
}

// Tolerance of a K-term dot product in F32 against the exact one: summing K rounded products
// in any order (vector lanes, blocks) errs by at most K·u·Σ|x·w| (u = 2^-24, first order);
// FP8 adds one rounding for the block scale and the reference one for fl(q · s) per element
// and one for its final cast. (K + 3)·u·Σ|x·w| covers all of it.
double DotTolerance(int64_t k, double abs_products) {
  return (static_cast<double>(k) + 3.0) * kF32Epsilon * abs_products;
}

// DotTolerance of one token's product through w on the active target: the BF16 path through
// vdpbf16ps (Bf16PairsActive) splits x into hi + lo with |x - hi - lo| <=
// 2^-16 |x| (two roundings to BF16's 8 significant bits), so each product may err by 2^-16 |x·w|
// more.
double OneTokenTolerance(DType dtype, int64_t k, double abs_products) {
  const bool split = dtype == DType::BF16 && Bf16PairsActive();
  return DotTolerance(k, abs_products) + (split ? 0x1p-16 * abs_products : 0.0);
}

class MatMulDTypeTest : public ::testing::TestWithParam<DType> {};

// y against MatMulRef within DotTolerance for every token and row.
void ExpectMatchesReference(const TestWeight& w, int64_t n, std::mt19937& rng, ThreadPool* pool) {
  const std::vector<float> x = RandomActivations(n * w.cols, rng);
  std::vector<float> y(n * w.rows), expected(n * w.rows);
  MatMul(y, x, n, w.matrix(), pool);
  MatMulRef(expected, x, n, w.matrix());
  const std::vector<double> scale = AbsProducts(x, n, w);
  for (int64_t i = 0; i < n * w.rows; ++i)
    ASSERT_NEAR(
        y[i], expected[i],
        n == 1 ? OneTokenTolerance(w.dtype, w.cols, scale[i]) : DotTolerance(w.cols, scale[i]))
        << Name(w.dtype) << " " << ActiveSimdTargetName() << " n=" << n << " rows=" << w.rows
        << " cols=" << w.cols << " token=" << i / w.rows << " row=" << i % w.rows;
}

// n = 1 (row dots), 2 and 7 (tiles, partial), 49 (tiles in panels; FP8: the GEMM).
TEST_P(MatMulDTypeTest, MatchesReferenceOverOddShapes) {
  const DType dtype = GetParam();
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (int64_t rows : kSizes)
    for (int64_t cols : kSizes) {
      const TestWeight w = RandomWeight(dtype, rows, cols, rng);
      for (int64_t n : {1, 2, 7, 49}) ExpectMatchesReference(w, n, rng, &pool);
    }
}

// From 256 tokens on every dtype runs the GEMM over decoded rows.
TEST_P(MatMulDTypeTest, ManyTokensMatchReference) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{33, 129}, {130, 31}, {17, 300}})
    ExpectMatchesReference(RandomWeight(GetParam(), rows, cols, rng), 257, rng, &pool);
}

TEST_P(MatMulDTypeTest, ThreadCountDoesNotChangeBits) {
  const DType dtype = GetParam();
  std::mt19937 rng(11);
  const int64_t rows = 300, cols = 257;
  const TestWeight w = RandomWeight(dtype, rows, cols, rng);
  for (int64_t n : {1, 13, 49, 257}) {  // every kernel path
    const std::vector<float> x = RandomActivations(n * cols, rng);
    std::vector<float> single(n * rows);
    MatMul(single, x, n, w.matrix(), nullptr);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(n * rows);
      MatMul(y, x, n, w.matrix(), &pool);
      for (int64_t i = 0; i < n * rows; ++i)
        ASSERT_EQ(y[i], single[i]) << threads << " threads, n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, MatMulDTypeTest,
                         ::testing::Values(DType::F32, DType::BF16, DType::F8_E4M3),
                         [](const auto& param_info) {
                           return std::string(Name(param_info.param));
                         });

// The FP8 product equals the product with the exactly dequantized F32 weight (DequantizeRows):
// both are within DotTolerance of the same exact sum, so within twice that of each other.
TEST(MatMulFp8, EqualsProductWithDequantizedWeight) {
  std::mt19937 rng(3);
  for (bool power_of_two : {true, false})
    for (int64_t rows : {1, 33, 129, 300})
      for (int64_t cols : {31, 128, 129, 300})
        for (int64_t n : {1, 2, 7, 33}) {
          const TestWeight w = RandomWeight(DType::F8_E4M3, rows, cols, rng, power_of_two);
          std::vector<float> dense(rows * cols);
          DequantizeRows(dense, w.matrix(), 0, rows);
          const WeightMatrix dense_matrix{DType::F32, dense.data(), rows, cols};
          const std::vector<float> x = RandomActivations(n * cols, rng);
          std::vector<float> y_fp8(n * rows), y_f32(n * rows);
          MatMul(y_fp8, x, n, w.matrix(), nullptr);
          MatMul(y_f32, x, n, dense_matrix, nullptr);
          const std::vector<double> scale = AbsProducts(x, n, w);
          for (int64_t i = 0; i < n * rows; ++i)
            ASSERT_NEAR(y_fp8[i], y_f32[i], 2 * DotTolerance(cols, scale[i]))
                << "rows=" << rows << " cols=" << cols << " n=" << n;
        }
}

// With one-hot activations every output is a single weight times its scale: an exact check of
// the in-register FP8 decode for every finite code, in both the register path (n <= 2) and
// the decoded-tile path (larger n).
TEST(MatMulFp8, DecodesEveryFiniteCodeExactly) {
  std::vector<uint8_t> codes;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7F) != 0x7F) codes.push_back(static_cast<uint8_t>(c));
  const auto cols = static_cast<int64_t>(codes.size());  // 254: two scale blocks
  const std::vector<float> scales = {0.37f, 3.0f};
  const WeightMatrix w{DType::F8_E4M3, codes.data(), 1, cols, scales.data()};
  for (int64_t n : {int64_t{1}, int64_t{2}, cols}) {
    for (int64_t first = 0; first < cols; first += n) {
      const int64_t count = std::min(n, cols - first);
      std::vector<float> x(count * cols, 0.0f), y(count);
      for (int64_t t = 0; t < count; ++t) x[t * cols + first + t] = 1.0f;
      MatMul(y, x, count, w, nullptr);
      for (int64_t t = 0; t < count; ++t) {
        const int64_t k = first + t;
        ASSERT_EQ(y[t], F8E4M3ToF32(codes[k]) * scales[k / 128]) << "code " << int{codes[k]};
      }
    }
  }
}

TEST(MatMulFp8, NanCodesGiveNan) {
  for (uint8_t nan_code : {uint8_t{0x7F}, uint8_t{0xFF}})
    for (int64_t n : {1, 5}) {
      const std::vector<uint8_t> codes = {0x38, nan_code, 0x38};
      const std::vector<float> scales = {1.0f};
      const WeightMatrix w{DType::F8_E4M3, codes.data(), 1, 3, scales.data()};
      std::vector<float> x(n * 3, 1.0f), y(n);
      MatMul(y, x, n, w, nullptr);
      for (float v : y) EXPECT_TRUE(std::isnan(v));
    }
}

// Spec 3.3: W[i, j] = fp8(Wq[i, j]) · S[i / 128, j / 128], partial edge blocks using the scale
// of the block they fall in. Written block by block here, independently of the kernel's index.
TEST(DequantizeRows, UsesTheScaleOfEachBlockIncludingEdges) {
  std::mt19937 rng(5);
  const int64_t rows = 200, cols = 300;  // 2 × 3 scale blocks, both edges partial
  const TestWeight w = RandomWeight(DType::F8_E4M3, rows, cols, rng);
  std::vector<float> expected(rows * cols);
  for (int64_t bi = 0; bi < 2; ++bi)
    for (int64_t bj = 0; bj < 3; ++bj)
      for (int64_t i = bi * 128; i < std::min(rows, bi * 128 + 128); ++i)
        for (int64_t j = bj * 128; j < std::min(cols, bj * 128 + 128); ++j)
          expected[i * cols + j] = F8E4M3ToF32(w.data[i * cols + j]) * w.scales[bi * 3 + bj];
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 200}, {127, 129}, {150, 200}, {5, 5}}) {
    std::vector<float> out((end - begin) * cols);
    DequantizeRows(out, w.matrix(), begin, end);
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < cols; ++j)
        ASSERT_EQ(out[(i - begin) * cols + j], expected[i * cols + j]) << i << ", " << j;
  }
}

TEST(DequantizeRows, Bf16IsExact) {
  const std::vector<uint16_t> bits = {0x3F80, 0xC2F7, 0x0001, 0x7F7F, 0x8000, 0x4049};
  const WeightMatrix w{DType::BF16, bits.data(), 2, 3};
  std::vector<float> out(6);
  DequantizeRows(out, w, 0, 2);
  for (size_t i = 0; i < bits.size(); ++i) EXPECT_EQ(out[i], Bf16ToF32(bits[i]));
}

TEST(MatMul, ZeroColumnsGiveZeros) {
  const float unused = 0.0f;
  const WeightMatrix w{DType::F32, &unused, 3, 0};
  std::vector<float> y(6, 1.0f);
  MatMul(y, std::span<const float>(), 2, w, nullptr);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(MatMul, RejectsBadArguments) {
  const std::vector<float> f32(12, 1.0f);
  const std::vector<uint8_t> fp8(12, 0x38);
  const std::vector<float> scales = {1.0f};
  std::vector<float> x(8), y(6);
  const WeightMatrix good{DType::F32, f32.data(), 3, 4};
  EXPECT_NO_THROW(MatMul(y, x, 2, good, nullptr));
  EXPECT_THROW(MatMul(y, std::span<const float>(x).first(7), 2, good, nullptr), Error);
  EXPECT_THROW(MatMul(std::span<float>(y).first(5), x, 2, good, nullptr), Error);
  EXPECT_THROW(MatMulRef(y, x, 3, good), Error);
  const WeightMatrix f16{DType::F16, f32.data(), 3, 4};
  EXPECT_THROW(MatMul(y, x, 2, f16, nullptr), Error);
  const WeightMatrix fp8_unscaled{DType::F8_E4M3, fp8.data(), 3, 4};
  EXPECT_THROW(MatMul(y, x, 2, fp8_unscaled, nullptr), Error);
  const WeightMatrix f32_scaled{DType::F32, f32.data(), 3, 4, scales.data()};
  EXPECT_THROW(MatMul(y, x, 2, f32_scaled, nullptr), Error);
  std::vector<float> rows(8);
  EXPECT_THROW(DequantizeRows(rows, good, 2, 4), Error);
  EXPECT_THROW(DequantizeRows(std::span<float>(rows).first(3), good, 0, 1), Error);
  try {
    MatMul(y, std::span<const float>(x).first(7), 2, good, nullptr);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "MatMul: x has 7 elements, expected n * cols = 2 * 4");
  }
}

// Every Highway target this build compiled and this CPU runs (scalar, SSE4, AVX2, AVX3, ...)
// against the reference, over odd shapes on every kernel path (one token; tiles of a few tokens,
// full and partial; the GEMM from 256 tokens on, 48 for FP8), plus every FP8 code decoded exactly
// and NaN codes.
class ForEachTarget : public ::testing::Test {
 protected:
  void TearDown() override {
    ForceSimdTarget(0);
    DisableBf16Pairs(false);
  }
};

// The BF16 settings a target runs one token with: vdpbf16ps where the CPU has it, and the F32
// decode, which such CPUs otherwise never run.
std::vector<bool> Bf16PairSettings() {
  DisableBf16Pairs(false);
  if (Bf16PairsActive()) return {false, true};
  return {false};
}

TEST_F(ForEachTarget, MatchesReference) {
  const std::vector<int64_t> targets = SupportedSimdTargets();
  ASSERT_FALSE(targets.empty());
  ThreadPool pool(2);
  for (int64_t target : targets) {
    ForceSimdTarget(target);
    ASSERT_EQ(ActiveSimdTargetName(), SimdTargetName(target));
    std::mt19937 rng(static_cast<unsigned>(target % 1000));
    for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3})
      for (int64_t rows : {1, 33, 129, 300})
        for (int64_t cols : {1, 31, 32, 33, 127, 129, 4095}) {
          TestWeight w = RandomWeight(dtype, rows, cols, rng);
          for (int64_t n : {1, 3, 7, 13, 49}) ExpectMatchesReference(w, n, rng, &pool);
          if (dtype == DType::F8_E4M3) {  // the kernels without their NaN check
            w.fp8_nan_free = true;
            for (int64_t n : {1, 3, 7, 13}) ExpectMatchesReference(w, n, rng, &pool);
          }
          if (dtype == DType::BF16 && Bf16PairSettings().size() > 1) {  // the F32 decode too
            DisableBf16Pairs(true);
            ExpectMatchesReference(w, 1, rng, &pool);
            DisableBf16Pairs(false);
          }
        }
    // Matrices of over 512 KiB in every dtype, whose tiles read rows in turn up to 4 tokens
    // (short rows) or 2-3 (long rows), side by side beyond.
    for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3}) {
      const TestWeight short_rows = RandomWeight(dtype, 4100, 131, rng);
      for (int64_t n : {2, 3, 4, 5}) ExpectMatchesReference(short_rows, n, rng, &pool);
      const TestWeight long_rows = RandomWeight(dtype, 400, 1500, rng);
      for (int64_t n : {2, 3}) ExpectMatchesReference(long_rows, n, rng, &pool);
    }
  }
}

// MatMulUntransposed (y = x · W[begin:end]) against its reference on every target, for F32, BF16
// and FP8 over odd shapes and row ranges that start and end inside FP8 scale blocks. Output j
// sums the range's rows: each coefficient (x, FP8: times the block scale) is rounded once and
// each term added with at most two roundings (a product and a sum where the multiply-add is not
// fused); the reference rounds fl(q · s) once per FP8 element. Every rounding is at most 2^-24 of
// a partial sum bounded by Σ_i |x_i w_ij|, so (2 · rows + 3) roundings of it cover all.
// One token through BF16 weights with special activations in the vector body and in the partial
// last chunk: ±infinity and NaN give what F32 gives, and F32's largest finite values (which
// round to infinity in BF16), subnormals and zeros stay within the tolerance.
TEST_F(ForEachTarget, Bf16OneTokenSpecialActivations) {
  const float kMax = std::numeric_limits<float>::max();
  const float kInf = std::numeric_limits<float>::infinity();
  const float specials[] = {kInf,   -kInf,   std::numeric_limits<float>::quiet_NaN(),
                            kMax,   -kMax,   std::nextafter(kMax, 0.0f),
                            1e-40f, -1e-45f, 0.0f,
                            -0.0f};
  const int64_t rows = 9, cols = 37;
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> eighths(-4, 4);  // |w| <= 1/2: w · kMax stays finite
  TestWeight weight{DType::BF16, rows, cols, std::vector<uint8_t>(rows * cols * 2), {}};
  std::vector<float> values(rows * cols);
  for (float& v : values) v = static_cast<float>(eighths(rng)) / 8.0f;
  ConvertFromF32(DType::BF16, values, weight.data.data());
  const WeightMatrix w = weight.matrix();
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    for (bool pairs_off : Bf16PairSettings()) {
      DisableBf16Pairs(pairs_off);
      for (float special : specials)
        for (int64_t at : {3, 35}) {
          std::vector<float> x = RandomActivations(cols, rng);
          x[at] = special;
          std::vector<float> y(rows), expected(rows);
          MatMul(y, x, 1, w, nullptr);
          MatMulRef(expected, x, 1, w);
          const std::vector<double> scale = AbsProducts(x, 1, weight);
          for (int64_t i = 0; i < rows; ++i) {
            const std::string where =
                SimdTargetName(target) + (pairs_off ? " F32 decode" : "") + " x[" +
                std::to_string(at) + "] = " + std::to_string(special) + " row " + std::to_string(i);
            if (std::isnan(expected[i])) {
              EXPECT_TRUE(std::isnan(y[i])) << where;
            } else if (std::isinf(expected[i])) {
              EXPECT_EQ(y[i], expected[i]) << where;
            } else {
              EXPECT_NEAR(y[i], expected[i], OneTokenTolerance(DType::BF16, cols, scale[i]))
                  << where;
            }
          }
        }
    }
  }
}

TEST_F(ForEachTarget, UntransposedMatchesReference) {
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    std::mt19937 rng(static_cast<unsigned>(target % 1000) + 7);
    for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3})
      for (auto [total, begin, end] : {std::tuple<int64_t, int64_t, int64_t>{1, 0, 1},
                                       {33, 0, 33},
                                       {300, 3, 260},
                                       {300, 128, 300}})
        for (int64_t cols : {1, 31, 33, 127, 129, 300}) {
          TestWeight w = RandomWeight(dtype, total, cols, rng);
          w.fp8_nan_free = (begin + cols) % 2 == 1;  // both FP8 entries: scanned or promised
          const int64_t rows = end - begin;
          std::vector<float> dense(total * cols);
          DequantizeRows(dense, w.matrix(), 0, total);
          for (int64_t n : {1, 2, 5}) {
            const std::vector<float> x = RandomActivations(n * rows, rng);
            std::vector<float> y(n * cols, -1.0f), ref(n * cols);
            MatMulUntransposed(y, x, n, w.matrix(), begin, end);
            MatMulUntransposedRef(ref, x, n, w.matrix(), begin, end);
            for (int64_t t = 0; t < n; ++t)
              for (int64_t j = 0; j < cols; ++j) {
                double bound = 0;
                for (int64_t i = begin; i < end; ++i)
                  bound +=
                      std::fabs(static_cast<double>(x[t * rows + i - begin]) * dense[i * cols + j]);
                ASSERT_NEAR(y[t * cols + j], ref[t * cols + j],
                            (2.0 * static_cast<double>(rows) + 3) * kF32Epsilon * bound + 1e-30)
                    << Name(dtype) << " " << ActiveSimdTargetName() << " rows " << begin << ".."
                    << end << " cols " << cols << " n " << n << " token " << t << " column " << j;
              }
          }
        }
  }
}

TEST(MatMulUntransposed, Fp8NanCodesGiveNanAndBadArgumentsAreErrors) {
  const std::vector<uint8_t> codes = {0x38, 0x7F, 0x38, 0x38, 0x38, 0xFF};  // [3, 2]
  const std::vector<float> scales = {1.0f};
  const WeightMatrix w{DType::F8_E4M3, codes.data(), 3, 2, scales.data()};
  std::vector<float> x = {1.0f, 1.0f}, y(2);
  MatMulUntransposed(y, x, 1, w, 0, 2);  // rows 0-1: column 1 holds a NaN code
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_TRUE(std::isnan(y[1]));
  MatMulUntransposed(y, std::span<const float>(x).first(1), 1, w, 1, 2);  // row 1: no NaN
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 1.0f);
  MatMulUntransposed(y, std::span<const float>(x).first(1), 1, w, 2, 3);  // row 2: 0xFF
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_THROW(MatMulUntransposed(y, x, 1, w, 2, 4), Error);  // past the rows
  EXPECT_THROW(MatMulUntransposed(y, x, 1, w, 0, 1), Error);  // x too long for 1 row
  EXPECT_THROW(MatMulUntransposed(std::span<float>(y).first(1), x, 1, w, 0, 2), Error);
  EXPECT_THROW(MatMulUntransposedRef(y, x, 1, w, 1, 0), Error);
}

TEST_F(ForEachTarget, DecodesEveryFp8CodeAndNan) {
  std::vector<uint8_t> codes;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7F) != 0x7F) codes.push_back(static_cast<uint8_t>(c));
  const auto cols = static_cast<int64_t>(codes.size());
  const std::vector<float> scales = {0.37f, 3.0f};
  // The same codes in enough rows for a matrix that is read row after row.
  const int64_t tall_rows = 2100;
  std::vector<uint8_t> tall;
  for (int64_t r = 0; r < tall_rows; ++r) tall.insert(tall.end(), codes.begin(), codes.end());
  const std::vector<float> tall_scales(2 * ((tall_rows + 127) / 128), 0.37f);
  // Every code in every column of a matrix of over 512 KiB with short rows.
  constexpr int64_t kNarrowRows = 8200, kNarrowCols = 64;
  std::vector<uint8_t> narrow(kNarrowRows * kNarrowCols);
  for (int64_t i = 0; i < kNarrowRows * kNarrowCols; ++i)
    narrow[i] = codes[i % static_cast<int64_t>(codes.size())];
  const std::vector<float> narrow_scales((kNarrowRows + 127) / 128, 0.37f);
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    for (bool nan_free : {false, true})
      for (int64_t n : {int64_t{1}, int64_t{5}})
        for (int64_t first = 0; first < cols; first += n) {
          const int64_t count = std::min(n, cols - first);
          std::vector<float> x(count * cols, 0.0f), y(count);
          for (int64_t t = 0; t < count; ++t) x[t * cols + first + t] = 1.0f;
          MatMul(y, x, count, {DType::F8_E4M3, codes.data(), 1, cols, scales.data(), nan_free},
                 nullptr);
          for (int64_t t = 0; t < count; ++t) {
            const int64_t k = first + t;
            ASSERT_EQ(y[t], F8E4M3ToF32(codes[k]) * scales[k / 128])
                << SimdTargetName(target) << " code " << int{codes[k]} << " n=" << count
                << " nan_free=" << nan_free;
          }
          if (count == 1) {
            std::vector<float> y_tall(tall_rows);
            MatMul(y_tall, x, 1,
                   {DType::F8_E4M3, tall.data(), tall_rows, cols, tall_scales.data(), nan_free},
                   nullptr);
            for (int64_t r : {int64_t{0}, tall_rows - 1})
              ASSERT_EQ(y_tall[r], F8E4M3ToF32(codes[first]) * 0.37f)
                  << SimdTargetName(target) << " code " << int{codes[first]} << " row " << r;
          }
        }
    // The tiles that read a big matrix's rows in turn (4 tokens, 64-column rows), every code in
    // every column: row r holds the codes from (r * 64) mod 254 on.
    for (bool nan_free : {false, true})
      for (int64_t j0 = 0; j0 < kNarrowCols; j0 += 4) {
        std::vector<float> x(4 * kNarrowCols, 0.0f), y(4 * kNarrowRows);
        for (int64_t t = 0; t < 4; ++t) x[t * kNarrowCols + j0 + t] = 1.0f;
        MatMul(y, x, 4,
               {DType::F8_E4M3, narrow.data(), kNarrowRows, kNarrowCols, narrow_scales.data(),
                nan_free},
               nullptr);
        for (int64_t t = 0; t < 4; ++t)
          for (int64_t r = 0; r < kNarrowRows; ++r)
            ASSERT_EQ(y[t * kNarrowRows + r], F8E4M3ToF32(narrow[r * kNarrowCols + j0 + t]) * 0.37f)
                << SimdTargetName(target) << " row " << r << " column " << j0 + t;
      }
    // A NaN code anywhere in a row (vector body or tail, either sign) makes that row NaN and
    // leaves its neighbours alone.
    for (int64_t nan_col : {0, 5, 64, 200})
      for (uint8_t nan_code : {uint8_t{0x7F}, uint8_t{0xFF}})
        for (auto [n, rows] : {std::pair<int64_t, int64_t>{1, 3}, {6, 3}, {1, 3000}, {3, 3000}}) {
          const int64_t c = 203;  // 3000 rows: big enough to be read row after row
          std::vector<uint8_t> data(rows * c, 0x38);  // 1.0
          data[1 * c + nan_col] = nan_code;
          const std::vector<float> s(2 * ((rows + 127) / 128), 1.0f);
          const WeightMatrix m{DType::F8_E4M3, data.data(), rows, c, s.data()};
          std::vector<float> x(n * c, 1.0f), y(n * rows);
          MatMul(y, x, n, m, nullptr);
          for (int64_t t = 0; t < n; ++t) {
            EXPECT_EQ(y[t * rows + 0], 203.0f) << SimdTargetName(target);
            EXPECT_TRUE(std::isnan(y[t * rows + 1])) << SimdTargetName(target) << " " << nan_col;
            EXPECT_EQ(y[t * rows + 2], 203.0f) << SimdTargetName(target);
          }
        }
  }
}

// One token with |x · scale| of 2^8 and more, where x times the 2^120 of the F32-bit FP8 decode
// (Fp8BitsDecoder) would overflow and the kernel takes the F16 decode for that row block: every
// code still exact (scales and activations are powers of two), in a one-row matrix and in one
// read row after row; an infinite activation gives what the scalar products give.
TEST_F(ForEachTarget, Fp8OneTokenWithLargeActivations) {
  std::vector<uint8_t> codes;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7F) != 0x7F) codes.push_back(static_cast<uint8_t>(c));
  const auto cols = static_cast<int64_t>(codes.size());
  const std::vector<float> scales = {0.5f, 4.0f};  // 2^7 x 0.5 stays below 2^8, x 4 does not
  const int64_t tall_rows = 2100;
  std::vector<uint8_t> tall;
  for (int64_t r = 0; r < tall_rows; ++r) tall.insert(tall.end(), codes.begin(), codes.end());
  std::vector<float> tall_scales(2 * ((tall_rows + 127) / 128));
  for (size_t i = 0; i < tall_scales.size(); ++i) tall_scales[i] = i % 2 == 0 ? 0.5f : 4.0f;
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t target : SupportedSimdTargets()) {
    ForceSimdTarget(target);
    for (bool nan_free : {false, true})
      for (float big : {0x1p7f, 0x1p8f, 0x1p20f, 0x1p100f, inf})
        for (int64_t first = 0; first < cols; ++first) {
          std::vector<float> x(cols, 0.0f), y(1), y_tall(tall_rows);
          x[first] = big;
          const float expected = F8E4M3ToF32(codes[first]) * scales[first / 128] * big;
          MatMul(y, x, 1, {DType::F8_E4M3, codes.data(), 1, cols, scales.data(), nan_free},
                 nullptr);
          std::vector<float> results = {y[0]};
          if (first % 16 == 0) {  // the tall matrix for every 16th code: ASan runs this slowly
            MatMul(y_tall, x, 1,
                   {DType::F8_E4M3, tall.data(), tall_rows, cols, tall_scales.data(), nan_free},
                   nullptr);
            results.insert(results.end(), {y_tall.front(), y_tall.back()});
          }
          for (float got : results) {
            if (std::isnan(expected))
              ASSERT_TRUE(std::isnan(got))
                  << SimdTargetName(target) << " code " << int{codes[first]};
            else
              ASSERT_EQ(got, expected)
                  << SimdTargetName(target) << " code " << int{codes[first]} << " x " << big;
          }
        }
  }
}

// The byte tables of the VBMI one-token kernel (kernels/fp8_table.h): for every magnitude, the
// BF16 bits are those of the exact F32 value, whose low 16 bits are zero (NaN: a quiet NaN).
TEST(Fp8ByteTables, HoldTheBf16OfEveryMagnitude) {
  for (int m = 0; m < 128; ++m) {
    const float value = F8E4M3ToF32(static_cast<uint8_t>(m));
    const uint16_t bf16 =
        static_cast<uint16_t>((kFp8ByteTables.high[m] << 8) | kFp8ByteTables.low[m]);
    const float decoded = std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16);
    if (m == 0x7F) {
      EXPECT_TRUE(std::isnan(decoded));
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(value) & 0xFFFFu, 0u) << m;
      EXPECT_EQ(decoded, value) << "magnitude " << m;
    }
  }
}

TEST(Fp8HasNanCode, FindsEitherNanCodeAnywhere) {
  for (size_t size : {0, 1, 7, 8, 9, 31, 64, 129}) {
    std::vector<uint8_t> codes(size);
    for (size_t i = 0; i < size; ++i) codes[i] = static_cast<uint8_t>((i * 37) % 256);
    for (auto& c : codes)
      if ((c & 0x7F) == 0x7F) c = 0x7E;  // every other code, 0x7E / 0xFE / 0x80 included
    EXPECT_FALSE(Fp8HasNanCode(codes)) << size;
    for (size_t at = 0; at < size; ++at)
      for (uint8_t nan_code : {uint8_t{0x7F}, uint8_t{0xFF}}) {
        std::vector<uint8_t> with_nan = codes;
        with_nan[at] = nan_code;
        EXPECT_TRUE(Fp8HasNanCode(with_nan)) << size << " " << at << " " << int{nan_code};
      }
  }
}

// A view of rows multiplies exactly like the same rows of the full matrix.
TEST(ViewRows, MatchesTheFullMatrixRows) {
  std::mt19937 rng(9);
  for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    const TestWeight w = RandomWeight(dtype, 300, 129, rng);
    const int64_t begin = 128, end = 290;
    WeightMatrix view;
    ASSERT_TRUE(ViewRows(w.matrix(), begin, end, &view)) << Name(dtype);
    const std::vector<float> x = RandomActivations(3 * 129, rng);
    std::vector<float> full(3 * 300), part(3 * (end - begin));
    MatMul(full, x, 3, w.matrix(), nullptr);
    MatMul(part, x, 3, view, nullptr);
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t i = begin; i < end; ++i)
        ASSERT_EQ(part[t * (end - begin) + i - begin], full[t * 300 + i]) << Name(dtype) << i;
    WeightMatrix unaligned;
    EXPECT_EQ(ViewRows(w.matrix(), 5, 10, &unaligned), dtype != DType::F8_E4M3);
  }
  const TestWeight w = RandomWeight(DType::F32, 4, 4, rng);
  WeightMatrix out;
  EXPECT_THROW(ViewRows(w.matrix(), 3, 5, &out), Error);
}

}  // namespace
}  // namespace whale
