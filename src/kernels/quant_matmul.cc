// Fast int8 / int4 matrix products (quant_matmul.h), one Highway dynamic dispatch per call.
//
// Each task computes a range of output rows for all tokens. Rows are taken kRows at a time and
// tokens kTokens at a time: every weight group loaded (and, for int4, unpacked) is used for
// kTokens tokens, every activation group for kRows rows. Per (row, token) one F32 vector of 8
// partial sums collects the scaled group dots; the single horizontal sum happens at the end of
// the row. Scales are handled 8 groups at a time: one F16 -> F32 conversion of 8 weight scales,
// times the activation's 8 scales, gives the 8 per-group multipliers.
//
// x86 targets (AVX2 and up) use raw AVX2 integer intrinsics, which Highway 1.0.3 lacks:
//   int8: vpmaddubsw(|w|, sign(a, w)) then vpmaddwd with ones. |w| <= 128 and |a| <= 127, so a
//         pair sum is at most 2 * 128 * 127 = 32512 < 32767: the saturating add never saturates.
//   int4: codes 0..15 used unsigned directly; two vpmaddubsw results (halves of two groups)
//         added in 16 bits: at most 4 * 15 * 127 = 7620. The -8 offset is corrected per group
//         with the activation's code sum: Σ (c - 8) a = Σ c a - 8 Σ a.
//   AVX3_DL (VNNI) replaces vpmaddubsw + vpmaddwd with vpdpbusd (same exact integer result).
// Other targets run a portable scalar loop over the same data (exact integer group sums).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant_matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_matmul.h"
#include "tensor/dtype.h"
#include "util/error.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#ifndef WHALE_QUANT_MATMUL_SHARED
#define WHALE_QUANT_MATMUL_SHARED
namespace whale::quant_detail {

// Everything a task needs; activations are already quantized.
struct QuantJob {
  const WeightMatrix* w;
  bool int4;
  int64_t n;              // tokens
  int64_t groups;         // ceil(cols / 32)
  int64_t padded_groups;  // groups rounded up to 8: the stride of ad / ac
  const int8_t* aq;       // [n, groups * 32] activation codes (int4: each group pair's halves
                          // reordered lo(g), lo(g+1), hi(g), hi(g+1); a lone last group natural)
  const float* ad;        // [n, padded_groups] activation scales, zero past `groups`
  const float* ac;        // [n, padded_groups] int4: -8 * ad * code sum, zero past `groups`
  float* y;               // [n, rows]
};

inline constexpr int kChunk = 8;            // groups whose scales are converted together
inline constexpr int64_t kTokenBlock = 64;  // tokens whose activations stay cache-resident
inline constexpr int64_t kRowsPerUnit = 4;  // rows of one tile; the unit of work splitting

}  // namespace whale::quant_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::HWY_NAMESPACE {
namespace {

using quant_detail::kChunk;
using quant_detail::QuantJob;

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2

// The 8 weight scales of groups [g0, g0 + 8) of one row as F32 (zeros past `groups`).
inline void LoadScales(float* out, const uint16_t* row_scales, int64_t g0, int64_t groups) {
  __m128i bits;
  if (g0 + kChunk <= groups) {
    bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row_scales + g0));
  } else {
    alignas(16) uint16_t tmp[kChunk] = {};
    std::memcpy(tmp, row_scales + g0, static_cast<size_t>(groups - g0) * sizeof(uint16_t));
    bits = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
  }
  _mm256_store_ps(out, _mm256_cvtph_ps(bits));
}

// 8 int32 lanes = Σ of 4 adjacent u8 x s8 products.
inline __m256i DotU8S8(__m256i u, __m256i s) {
#if HWY_TARGET <= HWY_AVX3_DL
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}
// The same over two operand pairs (int4 group halves).
inline __m256i DotU8S8x2(__m256i u0, __m256i s0, __m256i u1, __m256i s1) {
#if HWY_TARGET <= HWY_AVX3_DL
  return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u0, s0), u1, s1);
#else
  const __m256i sum16 =
      _mm256_add_epi16(_mm256_maddubs_epi16(u0, s0), _mm256_maddubs_epi16(u1, s1));
  return _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
#endif
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y for rows [row0, row0 + R) and tokens [tok0, tok0 + T).
template <int R, int T, bool kInt4>
void Tile(const QuantJob& job, int64_t row0, int64_t tok0) {
  const WeightMatrix& w = *job.w;
  const int64_t groups = job.groups;
  const int64_t row_bytes = groups * (kInt4 ? 16 : 32);
  const int64_t act_stride = groups * 32;
  const uint8_t* wrow[R];
  const uint16_t* srow[R];
  for (int r = 0; r < R; ++r) {
    wrow[r] = static_cast<const uint8_t*>(w.data) + (row0 + r) * row_bytes;
    srow[r] = w.group_scales + (row0 + r) * groups;
  }
  const int8_t* arow[T];
  const float* drow[T];
  const float* crow[T];
  for (int t = 0; t < T; ++t) {
    arow[t] = job.aq + (tok0 + t) * act_stride;
    drow[t] = job.ad + (tok0 + t) * job.padded_groups;
    crow[t] = job.ac + (tok0 + t) * job.padded_groups;
  }
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const __m256i pair_index = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);

  for (int64_t g0 = 0; g0 < groups; g0 += kChunk) {
    const int nb = static_cast<int>(std::min<int64_t>(kChunk, groups - g0));
    alignas(32) float scale[R][T][kChunk];  // weight scale x activation scale per group
    for (int r = 0; r < R; ++r) {
      alignas(32) float ws[kChunk];
      LoadScales(ws, srow[r], g0, groups);
      const __m256 dw = _mm256_load_ps(ws);
      for (int t = 0; t < T; ++t) {
        _mm256_store_ps(scale[r][t], _mm256_mul_ps(dw, _mm256_loadu_ps(drow[t] + g0)));
        if constexpr (kInt4)
          acc[r][t] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(crow[t] + g0), acc[r][t]);
      }
    }
    if constexpr (!kInt4) {
      for (int j = 0; j < nb; ++j) {
        const int64_t g = g0 + j;
        __m256i a[T];
        for (int t = 0; t < T; ++t)
          a[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arow[t] + g * 32));
        for (int r = 0; r < R; ++r) {
          const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[r] + g * 32));
          const __m256i wabs = _mm256_abs_epi8(wv);
          for (int t = 0; t < T; ++t) {
            const __m256i dot = DotU8S8(wabs, _mm256_sign_epi8(a[t], wv));
            acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                        _mm256_broadcast_ss(&scale[r][t][j]), acc[r][t]);
          }
        }
      }
    } else {
      int j = 0;
      for (; j + 1 < nb; j += 2) {  // a group pair: 32 weight bytes, 64 activation bytes
        const int64_t g = g0 + j;
        __m256i alo[T], ahi[T];
        for (int t = 0; t < T; ++t) {
          alo[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arow[t] + g * 32));
          ahi[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arow[t] + g * 32 + 32));
        }
        for (int r = 0; r < R; ++r) {
          const __m256i bytes =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[r] + g * 16));
          const __m256i lo = _mm256_and_si256(bytes, low_nibbles);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles);
          for (int t = 0; t < T; ++t) {
            const __m256i dot = DotU8S8x2(lo, alo[t], hi, ahi[t]);
            // Lanes 0-3 belong to group g, lanes 4-7 to group g + 1.
            const __m256 s = _mm256_permutevar8x32_ps(
                _mm256_castps128_ps256(
                    _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&scale[r][t][j])))),
                pair_index);
            acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[r][t]);
          }
        }
      }
      if (j < nb) {  // the lone last group of an odd count: natural activation order
        const int64_t g = g0 + j;
        __m256i a[T];
        for (int t = 0; t < T; ++t)
          a[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arow[t] + g * 32));
        for (int r = 0; r < R; ++r) {
          const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wrow[r] + g * 16));
          const __m256i codes =
              _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bytes, 4), bytes), low_nibbles);
          for (int t = 0; t < T; ++t) {
            const __m256i dot = DotU8S8(codes, a[t]);
            acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                        _mm256_broadcast_ss(&scale[r][t][j]), acc[r][t]);
          }
        }
      }
    }
  }
  const int64_t rows = w.rows;
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) job.y[(tok0 + t) * rows + row0 + r] = HorizontalSum(acc[r][t]);
}

#else  // portable targets

template <int R, int T, bool kInt4>
void Tile(const QuantJob& job, int64_t row0, int64_t tok0) {
  const WeightMatrix& w = *job.w;
  const int64_t groups = job.groups;
  const int64_t row_bytes = groups * (kInt4 ? 16 : 32);
  for (int r = 0; r < R; ++r) {
    const uint8_t* wrow = static_cast<const uint8_t*>(w.data) + (row0 + r) * row_bytes;
    const uint16_t* srow = w.group_scales + (row0 + r) * groups;
    for (int t = 0; t < T; ++t) {
      const int8_t* a = job.aq + (tok0 + t) * groups * 32;
      const float* ad = job.ad + (tok0 + t) * job.padded_groups;
      const float* ac = job.ac + (tok0 + t) * job.padded_groups;
      float sum = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        const float dw = F16ToF32(srow[g]);
        int32_t dot = 0;
        if constexpr (!kInt4) {
          for (int k = 0; k < 32; ++k) dot += static_cast<int8_t>(wrow[g * 32 + k]) * a[g * 32 + k];
        } else {
          const bool paired = (g % 2 == 0) ? g + 1 < groups : true;
          for (int k = 0; k < 16; ++k) {
            const uint8_t byte = wrow[g * 16 + k];
            // Position of this group's halves in the (possibly pair-reordered) activations.
            const int64_t lo_at = !paired ? g * 32 + k : (g / 2) * 64 + (g % 2) * 16 + k;
            const int64_t hi_at = !paired ? g * 32 + 16 + k : (g / 2) * 64 + 32 + (g % 2) * 16 + k;
            dot += (byte & 0x0F) * a[lo_at] + (byte >> 4) * a[hi_at];
          }
        }
        sum += static_cast<float>(dot) * (dw * ad[g]);
        if constexpr (kInt4) sum += dw * ac[g];
      }
      job.y[(tok0 + t) * w.rows + row0 + r] = sum;
    }
  }
}

#endif

template <bool kInt4>
void RowsImpl(const QuantJob& job, int64_t row_begin, int64_t row_end) {
  constexpr int kR = static_cast<int>(quant_detail::kRowsPerUnit);
  constexpr int kT = 2;
  for (int64_t tb = 0; tb < job.n; tb += quant_detail::kTokenBlock) {
    const int64_t te = std::min(job.n, tb + quant_detail::kTokenBlock);
    int64_t r = row_begin;
    for (; r + kR <= row_end; r += kR) {
      int64_t t = tb;
      for (; t + kT <= te; t += kT) Tile<kR, kT, kInt4>(job, r, t);
      for (; t < te; ++t) Tile<kR, 1, kInt4>(job, r, t);
    }
    for (; r < row_end; ++r)
      for (int64_t t = tb; t < te; ++t) Tile<1, 1, kInt4>(job, r, t);
  }
}

namespace hn = hwy::HWY_NAMESPACE;

// One activation row as QuantizeActivationRow (kernels/quant.h) writes it, bit for bit: the same
// F32 operations (amax, 127 / amax, x * inverse rounded to nearest even, clamped), in vectors.
// Groups that are short (the last, when cols % 32 != 0) or hold a non-finite value take the
// scalar reference.
void QuantizeRow(int8_t* q, float* d, int32_t* sum, const float* x, int64_t cols) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t lanes = hn::Lanes(df);
  const int64_t full = cols / 32;
  for (int64_t g = 0; g < full; ++g) {
    const float* xg = x + g * 32;
    auto amax = hn::Zero(df);
    auto nan_probe = hn::Zero(df);  // x - x is NaN exactly for inf and NaN
    for (size_t k = 0; k < 32; k += lanes) {
      const auto v = hn::LoadU(df, xg + k);
      amax = hn::Max(amax, hn::Abs(v));
      nan_probe = hn::Add(nan_probe, hn::Sub(v, v));
    }
    const float m = hn::GetLane(hn::MaxOfLanes(df, amax));
    const float probe = hn::GetLane(hn::SumOfLanes(df, nan_probe));
    if (!(probe == 0.0f)) {
      QuantizeActivationRow(q + g * 32, d + g, sum + g, xg, 32);
      continue;
    }
    const float inverse = m > 0.0f ? 127.0f / m : 0.0f;
    d[g] = m / 127.0f;
    const auto vi = hn::Set(df, inverse);
    auto total = hn::Zero(di);
    for (size_t k = 0; k < 32; k += lanes) {
      auto codes = hn::NearestInt(hn::Mul(hn::LoadU(df, xg + k), vi));
      codes = hn::Min(hn::Max(codes, hn::Set(di, -127)), hn::Set(di, 127));
      total = hn::Add(total, codes);
      hn::StoreU(hn::DemoteTo(d8, codes), d8, q + g * 32 + k);
    }
    sum[g] = hn::GetLane(hn::SumOfLanes(di, total));
  }
  if (full * 32 < cols)
    QuantizeActivationRow(q + full * 32, d + full, sum + full, x + full * 32, cols - full * 32);
}

}  // namespace

void QuantizeActivations(int8_t* q, float* d, int32_t* sum, const float* x, int64_t cols) {
  QuantizeRow(q, d, sum, x, cols);
}

void QuantRows(const QuantJob* job, int64_t row_begin, int64_t row_end) {
  if (job->int4)
    RowsImpl<true>(*job, row_begin, row_end);
  else
    RowsImpl<false>(*job, row_begin, row_end);
}

const char* QuantTargetName() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace whale::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <vector>

namespace whale {

HWY_EXPORT(QuantRows);
HWY_EXPORT(QuantizeActivations);
HWY_EXPORT(QuantTargetName);

namespace {

using quant_detail::QuantJob;

// Activation scratch of the calling thread, grown on demand and reused by later calls.
struct ActivationScratch {
  std::vector<int8_t> codes;   // [n, groups * 32]
  std::vector<float> scales;   // [n, padded_groups]
  std::vector<float> offsets;  // [n, padded_groups]
  std::vector<int32_t> sums;   // [n, groups]
};

// Below this many multiply-adds a call runs on the calling thread; a fork/join costs more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 16;

void QuantMatMul(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                 ThreadPool* pool, bool int4, std::string_view context) {
  ValidateQuantWeight(w, context);
  if (w.dtype != (int4 ? DType::U8 : DType::I8))
    Fail(context, ": weight dtype ", Name(w.dtype), ", expected ", int4 ? "U8 (int4)" : "I8");
  if (n < 0) Fail(context, ": negative token count ", n);
  if (static_cast<int64_t>(x.size()) != n * w.cols || static_cast<int64_t>(y.size()) != n * w.rows)
    Fail(context, ": x has ", x.size(), " values and y ", y.size(), ", expected ", n, " x ", w.cols,
         " and ", n, " x ", w.rows);
  if (n == 0 || w.rows == 0) return;
  const int64_t cols = w.cols;
  const int64_t groups = QuantGroups(cols);
  const int64_t padded_groups =
      (groups + quant_detail::kChunk - 1) / quant_detail::kChunk * quant_detail::kChunk;
  // A reference, not the name: the pool's workers below must use the calling thread's buffers.
  thread_local ActivationScratch caller_scratch;
  ActivationScratch& scratch = caller_scratch;
  const auto grow = [](auto& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  };
  grow(scratch.codes, n * groups * 32);
  grow(scratch.scales, n * padded_groups);
  grow(scratch.offsets, n * padded_groups);
  grow(scratch.sums, n * groups);
  const auto quantize = [&](int64_t t) {
    int8_t* q = scratch.codes.data() + t * groups * 32;
    float* d = scratch.scales.data() + t * padded_groups;
    float* c = scratch.offsets.data() + t * padded_groups;
    int32_t* s = scratch.sums.data() + t * groups;
    if (cols == 0) {
      std::fill(d, d + padded_groups, 0.0f);
      std::fill(c, c + padded_groups, 0.0f);
      return;
    }
    HWY_DYNAMIC_DISPATCH(QuantizeActivations)(q, d, s, x.data() + t * cols, cols);
    for (int64_t g = groups; g < padded_groups; ++g) d[g] = 0.0f;
    for (int64_t g = 0; g < padded_groups; ++g)
      c[g] = int4 && g < groups ? -8.0f * d[g] * static_cast<float>(s[g]) : 0.0f;
    if (int4) {  // swap hi(g) and lo(g + 1) of every full pair
      for (int64_t g = 0; g + 1 < groups; g += 2) {
        int8_t tmp[16];
        std::memcpy(tmp, q + g * 32 + 16, 16);
        std::memcpy(q + g * 32 + 16, q + g * 32 + 32, 16);
        std::memcpy(q + g * 32 + 32, tmp, 16);
      }
    }
  };
  const bool parallel =
      pool != nullptr && pool->size() > 1 && n * w.rows * cols >= kMinParallelMacs;
  if (parallel && n > 1) {
    pool->ParallelFor(static_cast<size_t>(n), 1, [&](size_t begin, size_t end, int) {
      for (size_t t = begin; t < end; ++t) quantize(static_cast<int64_t>(t));
    });
  } else {
    for (int64_t t = 0; t < n; ++t) quantize(t);
  }
  QuantJob job{&w,
               int4,
               n,
               groups,
               padded_groups,
               scratch.codes.data(),
               scratch.scales.data(),
               scratch.offsets.data(),
               y.data()};
  const auto rows_kernel = HWY_DYNAMIC_DISPATCH(QuantRows);
  if (!parallel) {
    rows_kernel(&job, 0, w.rows);
    return;
  }
  // Units of 4 rows (16 floats of y per token when aligned: no two threads share a line for
  // large outputs); at least ~64 KiB of weights per claimed chunk.
  const int64_t unit = quant_detail::kRowsPerUnit;
  const int64_t n_units = (w.rows + unit - 1) / unit;
  const int64_t unit_bytes =
      unit * QuantRowBytes(int4 ? QuantFormat::kInt4 : QuantFormat::kInt8, cols);
  const int64_t grain =
      std::max<int64_t>(4, (int64_t{64} << 10) / std::max<int64_t>(1, unit_bytes));
  pool->ParallelFor(static_cast<size_t>(n_units), static_cast<size_t>(grain),
                    [&](size_t begin, size_t end, int) {
                      rows_kernel(&job, static_cast<int64_t>(begin) * unit,
                                  std::min(w.rows, static_cast<int64_t>(end) * unit));
                    });
}

}  // namespace

const char* QuantMatMulTarget() {
  return HWY_DYNAMIC_DISPATCH(QuantTargetName)();
}

void ValidateQuantWeight(const WeightMatrix& w, std::string_view context) {
  if (w.dtype != DType::I8 && w.dtype != DType::U8)
    Fail(context, ": weight dtype ", Name(w.dtype), " is not a whale block format (I8 or U8)");
  if (w.rows < 0 || w.cols < 0)
    Fail(context, ": negative weight shape [", w.rows, ", ", w.cols, "]");
  if ((w.data == nullptr || w.group_scales == nullptr) && w.rows > 0 && w.cols > 0)
    Fail(context, ": ", Name(w.dtype), " weight without ", w.data ? "group scales" : "data");
  if (w.block_scales != nullptr) Fail(context, ": ", Name(w.dtype), " weight has FP8 block scales");
}

void MatMulInt8(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                ThreadPool* pool) {
  QuantMatMul(y, x, n, w, pool, false, "MatMulInt8");
}

void MatMulInt4(std::span<float> y, std::span<const float> x, int64_t n, const WeightMatrix& w,
                ThreadPool* pool) {
  QuantMatMul(y, x, n, w, pool, true, "MatMulInt4");
}

}  // namespace whale
#endif  // HWY_ONCE
