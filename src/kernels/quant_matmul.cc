// Fast int8 / int4 matrix products (quant_matmul.h), one Highway dynamic dispatch per call.
//
// The weights are stored in blocks of 8 interleaved rows (kernels/quant.h, STORAGE): each 32-bit
// lane of a 256-bit vector holds 4 codes of one row, so one vector of weights meets one 4-byte
// activation broadcast and yields 8 rows' partial dots at once, with no horizontal sums; a
// group's 8 scales are one F16 -> F32 conversion. A task computes whole row blocks for all
// tokens, T <= 4 tokens at a time, so each weight vector loaded (and, for int4, unpacked) serves T
// tokens. Per (row block, group, token) the exact integer dot of the group is converted once and
// multiplied by weight scale x activation scale into an F32 accumulator of 8 rows.
//
// x86 targets (AVX2 and up) use raw integer intrinsics, which Highway 1.0.3 lacks:
//   AVX2, int8: vpmaddubsw(|w|, sign(a, w)) then vpmaddwd with ones. |w| <= 128 and |a| <= 127,
//         so a pair sum is at most 2 * 128 * 127 = 32512 < 32767: the saturating add never
//         saturates.
//   AVX2, int4: codes 0..15 used unsigned directly; the 8 vpmaddubsw results of a group (4
//         chunks x low/high nibbles) are added in 16 bits: at most 8 * 2 * 15 * 127 = 30480.
//   AVX3_DL (VNNI): vpdpbusd accumulates u8 x s8 in 32 bits exactly. int8 codes are made unsigned
//         by flipping the sign bit (w + 128) and corrected with 128 x the activation code sum.
//   int4 (both): Σ (c - 8) a = Σ c a - 8 Σ a; the second term is the activation's precomputed
//         -8 x scale x code sum, times the weight scale.
// Other targets run a portable scalar loop over the same data (exact integer group sums).
// Every Highway TU of this library must compile the same target set (kernels/simd_targets.h):
// hwy::ChosenTarget::GetIndex is an inline function whose body depends on HWY_TARGETS, and an
// unoptimized build keeps it out of line, so the linker keeps one TU's copy for all. A TU with
// fewer targets then indexes empty slots of its dispatch tables (the clang-14 ASan build
// crashed so when a test forced AVX2 on an AVX-512 machine).
#include "kernels/simd_targets.h"
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant_matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_matmul.h"
#include "kernels/stream_prefetch.h"
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
  int64_t n;             // tokens
  int64_t groups;        // ceil(cols / 32)
  int64_t block_bytes;   // stored bytes of one row block
  const int8_t* aq;      // [n, groups * 32] activation codes
  const float* ad;       // [n, groups] activation scales
  const int32_t* as;     // [n, groups] activation code sums
  const float* ac;       // [n, groups] int4: -8 * scale * code sum
  float* y;              // [n, rows]
  bool stream_prefetch;  // one token: prefetch ahead of each stream (RunningStreamPrefetch)
};

inline constexpr int64_t kTokenBlock = 64;  // tokens whose activations stay cache-resident
inline constexpr int kMaxTile = 4;          // tokens per pass over a row block
// Row-block streams read side by side for one token (RowsImpl). One core, V2-Lite's 2048 x 1408
// int8 from DRAM, 1 / 2 / 4 streams: 19.4 / 20.8 / 24.0 GB/s and 24.4 / 30.9 / 25.7 in runs
// alternated; eight experts' products on 2 threads (one expert per task) 41.9-49.8 /
// 44.0-50.4 / 48.4-53.5 GB/s; V2-Lite int8 decode, 2 threads: 13.1-16.3 / 16.9-17.7 / 17.9 tok/s.
inline constexpr int kStreams = 4;
// How far ahead of its reads one token's kernel asks for each stream's lines into L2
// (prefetcht1), on CPUs where that gains (RunningStreamPrefetch, kernels/stream_prefetch.h; these
// figures are from the Zen 5 VM, where it does). The hardware prefetchers alone kept too few lines
// in flight for a core that also computes: eight V2-Lite int8 experts on 2 threads (BM_ExpertStep)
// read at 78-82 % of the rate of plain reads of the same bytes, 88-92 % with this. V2-Lite decode,
// steps with and without alternated at random in one run (median ms a token): int8 65.7 -> 61.8
// with 2 threads, 93.9 -> 90.1 with 1; int4 34.7 -> 32.5 and 53.9 -> 50.7. 512 B and 4-8 KiB ahead
// gained nothing, 1 and 1.5 KiB about as much as 2, 3 KiB less; prefetcht0 (into L1) at 2 KiB
// gained nothing. Measured on the AVX3_DL (VNNI) kernel; the AVX2 kernel, with more work per byte,
// prefetches the same.
inline constexpr int64_t kPrefetchBytes = 2048;

}  // namespace whale::quant_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::HWY_NAMESPACE {
namespace {

using quant_detail::QuantJob;

// Stores the first `valid` of 8 row results (the last block of a matrix may be partial).
inline void StoreRows(float* y, const float* acc8, int64_t valid) {
  if (valid >= kQuantRowBlock) {
    std::memcpy(y, acc8, kQuantRowBlock * sizeof(float));
  } else {
    std::memcpy(y, acc8, static_cast<size_t>(valid) * sizeof(float));
  }
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2

// The 32 bytes at p split into their low and high nibbles (int4 codes 0..15).
inline void UnpackNibbles(const uint8_t* p, __m256i& lo, __m256i& hi) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  lo = _mm256_and_si256(bytes, low_nibbles);
  hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles);
}

inline __m256i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

#if HWY_TARGET <= HWY_AVX3_DL
// acc + the dot of u8's unsigned bytes with s8's signed bytes, per 4-byte lane (vpdpbusd).
// Highway 1.0.3's AVX3_DL target also enables AVX-VNNI, so GCC encodes the 256-bit intrinsic in
// its VEX form, which Ice Lake and Zen 4 lack (they have only the AVX512-VNNI EVEX form) and fault
// on with SIGILL. The {evex} pseudo-prefix pins the encoding every AVX3_DL CPU has.
inline __m256i DotBytes(__m256i acc, __m256i u8, __m256i s8) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}
#endif

// y for tokens [tok0, tok0 + T) and the S row blocks block, block + stride, ... S > 1 serves one
// token: S blocks far apart are S memory streams, which one core reads from DRAM ~20 % faster
// than one (kernels/probe.h; quant_detail::kStreams).
template <int T, int S, bool kInt4>
void Tile(const QuantJob& job, int64_t block, int64_t stride, int64_t tok0) {
  const WeightMatrix& w = *job.w;
  const int64_t groups = job.groups;
  constexpr int64_t kGroupBytes = kInt4 ? 128 : 256;
  constexpr int64_t kQuadBytes = kQuantQuadScaleBytes + kQuantQuad * kGroupBytes;
  const uint8_t* wb[S];
  for (int s = 0; s < S; ++s)
    wb[s] = static_cast<const uint8_t*>(w.data) + (block + s * stride) * job.block_bytes;
  const int8_t* a[T];
  const float* ad[T];
  [[maybe_unused]] const int32_t* as[T];  // read by the int8 path only
  const float* ac[T];
  for (int t = 0; t < T; ++t) {
    a[t] = job.aq + (tok0 + t) * groups * kQuantGroup;
    ad[t] = job.ad + (tok0 + t) * groups;
    as[t] = job.as + (tok0 + t) * groups;
    ac[t] = job.ac + (tok0 + t) * groups;
  }
  __m256 acc[S][T];
  for (int s = 0; s < S; ++s)
    for (int t = 0; t < T; ++t) acc[s][t] = _mm256_setzero_ps();
  [[maybe_unused]] const __m256i ones16 = _mm256_set1_epi16(1);
  [[maybe_unused]] const __m256i sign_bits = _mm256_set1_epi8(static_cast<char>(0x80));

  for (int64_t g = 0; g < groups; ++g) {
    const int64_t quad = (g / kQuantQuad) * kQuadBytes;
    const int64_t group = quad + kQuantQuadScaleBytes + (g % kQuantQuad) * kGroupBytes;
    if (T == 1 && job.stream_prefetch) {
      // Every line of the stream once: the quad's scales with its first group, then the codes.
      // A prefetch past the end of the matrix never faults.
      for (int s = 0; s < S; ++s) {
        const char* ahead = reinterpret_cast<const char*>(wb[s]) + quant_detail::kPrefetchBytes;
        if (g % kQuantQuad == 0) _mm_prefetch(ahead + quad, _MM_HINT_T1);
        for (int64_t line = 0; line < kGroupBytes; line += 64)
          _mm_prefetch(ahead + group + line, _MM_HINT_T1);
      }
    }
    __m256i dot[S][T];  // the group's exact integer dot, 8 rows
#if HWY_TARGET <= HWY_AVX3_DL
    // kAcc accumulators per (block, token) shorten the vpdpbusd dependency chain (latency ~4-5
    // cycles): 4 for one or two chains, 2 when more chains are already independent.
    constexpr int kAcc = S * T <= 2 ? 4 : 2;
    __m256i p[S][T][kAcc];
    for (int s = 0; s < S; ++s)
      for (int t = 0; t < T; ++t)
        for (int i = 0; i < kAcc; ++i) p[s][t][i] = _mm256_setzero_si256();
    if constexpr (!kInt4) {
      for (int k = 0; k < 8; ++k)
        for (int s = 0; s < S; ++s) {
          const __m256i wk = _mm256_xor_si256(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[s] + group + k * 32)),
              sign_bits);
          for (int t = 0; t < T; ++t)
            p[s][t][k % kAcc] =
                DotBytes(p[s][t][k % kAcc], wk, Broadcast4(a[t] + g * kQuantGroup + 4 * k));
        }
    } else {
      for (int k = 0; k < 4; ++k)
        for (int s = 0; s < S; ++s) {
          __m256i lo, hi;
          UnpackNibbles(wb[s] + group + k * 32, lo, hi);
          for (int t = 0; t < T; ++t) {
            const int8_t* ag = a[t] + g * kQuantGroup;
            p[s][t][(2 * k) % kAcc] = DotBytes(p[s][t][(2 * k) % kAcc], lo, Broadcast4(ag + 4 * k));
            p[s][t][(2 * k + 1) % kAcc] =
                DotBytes(p[s][t][(2 * k + 1) % kAcc], hi, Broadcast4(ag + 16 + 4 * k));
          }
        }
    }
    for (int s = 0; s < S; ++s)
      for (int t = 0; t < T; ++t) {
        __m256i total = p[s][t][0];
        for (int i = 1; i < kAcc; ++i) total = _mm256_add_epi32(total, p[s][t][i]);
        // int8 codes were shifted to unsigned (xor 0x80): subtract 128 * sum(a) to undo it.
        if constexpr (kInt4) {
          dot[s][t] = total;
        } else {
          dot[s][t] = _mm256_sub_epi32(total, _mm256_set1_epi32(128 * as[t][g]));
        }
      }
#else
    if constexpr (!kInt4) {
      for (int s = 0; s < S; ++s)
        for (int t = 0; t < T; ++t) dot[s][t] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k)
        for (int s = 0; s < S; ++s) {
          const __m256i wk =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[s] + group + k * 32));
          const __m256i wabs = _mm256_abs_epi8(wk);
          for (int t = 0; t < T; ++t) {
            const __m256i signed_a =
                _mm256_sign_epi8(Broadcast4(a[t] + g * kQuantGroup + 4 * k), wk);
            dot[s][t] = _mm256_add_epi32(
                dot[s][t], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, signed_a), ones16));
          }
        }
    } else {
      __m256i sum16[S][T];
      for (int s = 0; s < S; ++s)
        for (int t = 0; t < T; ++t) sum16[s][t] = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k)
        for (int s = 0; s < S; ++s) {
          __m256i lo, hi;
          UnpackNibbles(wb[s] + group + k * 32, lo, hi);
          for (int t = 0; t < T; ++t) {
            const int8_t* ag = a[t] + g * kQuantGroup;
            sum16[s][t] = _mm256_add_epi16(
                sum16[s][t],
                _mm256_add_epi16(_mm256_maddubs_epi16(lo, Broadcast4(ag + 4 * k)),
                                 _mm256_maddubs_epi16(hi, Broadcast4(ag + 16 + 4 * k))));
          }
        }
      for (int s = 0; s < S; ++s)
        for (int t = 0; t < T; ++t) dot[s][t] = _mm256_madd_epi16(sum16[s][t], ones16);
    }
#endif
    for (int s = 0; s < S; ++s) {
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[s] + quad + (g % kQuantQuad) * 16)));
      for (int t = 0; t < T; ++t) {
        acc[s][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[s][t]),
                                    _mm256_mul_ps(dw, _mm256_set1_ps(ad[t][g])), acc[s][t]);
        if constexpr (kInt4) acc[s][t] = _mm256_fmadd_ps(dw, _mm256_set1_ps(ac[t][g]), acc[s][t]);
      }
    }
  }
  const int64_t rows = w.rows;
  for (int s = 0; s < S; ++s) {
    const int64_t b = block + s * stride;
    const int64_t valid = std::min<int64_t>(kQuantRowBlock, rows - b * kQuantRowBlock);
    for (int t = 0; t < T; ++t) {
      alignas(32) float out[kQuantRowBlock];
      _mm256_store_ps(out, acc[s][t]);
      StoreRows(job.y + (tok0 + t) * rows + b * kQuantRowBlock, out, valid);
    }
  }
}

#else  // portable targets

template <int T, bool kInt4>
void TileBlock(const QuantJob& job, int64_t block, int64_t tok0) {
  const WeightMatrix& w = *job.w;
  const QuantFormat format = kInt4 ? QuantFormat::kInt4 : QuantFormat::kInt8;
  const int64_t groups = job.groups;
  const auto* codes = static_cast<const uint8_t*>(w.data);
  for (int t = 0; t < T; ++t) {
    const int8_t* a = job.aq + (tok0 + t) * groups * kQuantGroup;
    float out[kQuantRowBlock];
    for (int64_t r = 0; r < kQuantRowBlock; ++r) {
      const int64_t row = block * kQuantRowBlock + r;
      float sum = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        int32_t dot = 0;
        for (int64_t k = 0; k < kQuantGroup; ++k) {
          bool high = false;
          const uint8_t byte =
              codes[QuantCodeIndex(format, w.cols, row, g * kQuantGroup + k, &high)];
          const int code = kInt4 ? (high ? byte >> 4 : byte & 0x0F) : static_cast<int8_t>(byte);
          dot += code * a[g * kQuantGroup + k];
        }
        const uint8_t* scale = codes + QuantScaleIndex(format, w.cols, row, g);
        const float dw = F16ToF32(static_cast<uint16_t>(scale[0] | scale[1] << 8));
        sum += static_cast<float>(dot) * (dw * job.ad[(tok0 + t) * groups + g]);
        if constexpr (kInt4) sum += dw * job.ac[(tok0 + t) * groups + g];
      }
      out[r] = sum;
    }
    StoreRows(job.y + (tok0 + t) * w.rows + block * kQuantRowBlock, out,
              std::min<int64_t>(kQuantRowBlock, w.rows - block * kQuantRowBlock));
  }
}

template <int T, int S, bool kInt4>
void Tile(const QuantJob& job, int64_t block, int64_t stride, int64_t tok0) {
  for (int s = 0; s < S; ++s) TileBlock<T, kInt4>(job, block + s * stride, tok0);
}

#endif

template <bool kInt4>
void RowsImpl(const QuantJob& job, int64_t block_begin, int64_t block_end) {
  constexpr int kT = quant_detail::kMaxTile;
  if (job.n == 1) {
    // One token: the S parts of the range are read side by side, S streams (see Tile).
    constexpr int kS = quant_detail::kStreams;
    const int64_t part = (block_end - block_begin) / kS;
    if (part > 0)
      PrefetchStreamStarts(static_cast<const uint8_t*>(job.w->data) + block_begin * job.block_bytes,
                           part * job.block_bytes, kS, part * job.block_bytes,
                           quant_detail::kPrefetchBytes);
    for (int64_t b = block_begin; b < block_begin + part; ++b) Tile<1, kS, kInt4>(job, b, part, 0);
    for (int64_t b = block_begin + kS * part; b < block_end; ++b) Tile<1, 1, kInt4>(job, b, 0, 0);
    return;
  }
  for (int64_t tb = 0; tb < job.n; tb += quant_detail::kTokenBlock) {
    const int64_t te = std::min(job.n, tb + quant_detail::kTokenBlock);
    for (int64_t b = block_begin; b < block_end; ++b) {
      int64_t t = tb;
      for (; t + kT <= te; t += kT) Tile<kT, 1, kInt4>(job, b, 0, t);
      switch (te - t) {
        case 3:
          Tile<3, 1, kInt4>(job, b, 0, t);
          break;
        case 2:
          Tile<2, 1, kInt4>(job, b, 0, t);
          break;
        case 1:
          Tile<1, 1, kInt4>(job, b, 0, t);
          break;
        default:
          break;
      }
    }
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

void QuantRows(const QuantJob* job, int64_t block_begin, int64_t block_end) {
  if (job->int4)
    RowsImpl<true>(*job, block_begin, block_end);
  else
    RowsImpl<false>(*job, block_begin, block_end);
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
  std::vector<float> scales;   // [n, groups]
  std::vector<float> offsets;  // [n, groups]
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
  if (cols == 0) {
    std::fill(y.begin(), y.end(), 0.0f);
    return;
  }
  // A reference, not the name: the pool's workers below must use the calling thread's buffers.
  thread_local ActivationScratch caller_scratch;
  ActivationScratch& scratch = caller_scratch;
  const auto grow = [](auto& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  };
  grow(scratch.codes, n * groups * kQuantGroup);
  grow(scratch.scales, n * groups);
  grow(scratch.offsets, n * groups);
  grow(scratch.sums, n * groups);
  const auto quantize = [&](int64_t t) {
    float* d = scratch.scales.data() + t * groups;
    int32_t* s = scratch.sums.data() + t * groups;
    HWY_DYNAMIC_DISPATCH(QuantizeActivations)
    (scratch.codes.data() + t * groups * kQuantGroup, d, s, x.data() + t * cols, cols);
    if (int4) {
      float* c = scratch.offsets.data() + t * groups;
      for (int64_t g = 0; g < groups; ++g) c[g] = -8.0f * d[g] * static_cast<float>(s[g]);
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
  const QuantFormat format = int4 ? QuantFormat::kInt4 : QuantFormat::kInt8;
  const QuantJob job{&w,
                     int4,
                     n,
                     groups,
                     QuantBlockBytes(format, cols),
                     scratch.codes.data(),
                     scratch.scales.data(),
                     scratch.sums.data(),
                     scratch.offsets.data(),
                     y.data(),
                     n == 1 && RunningStreamPrefetch()};
  const auto rows_kernel = HWY_DYNAMIC_DISPATCH(QuantRows);
  const int64_t blocks = QuantRowBlocks(w.rows);
  if (!parallel) {
    rows_kernel(&job, 0, blocks);
    return;
  }
  // Row blocks (8 rows: 32 bytes of y per token) claimed ~64 KiB of weights at a time; for one
  // token half a thread's share, so that the claim's streams (RowsImpl) stay long (2 threads,
  // 2048 x 2048 int8 from DRAM: 45.0-52.5 GB/s in 64 KiB claims, 53.5-54.0 in halves).
  const int64_t grain =
      n == 1 ? std::max<int64_t>(2, blocks / (2 * static_cast<int64_t>(pool->size())))
             : std::max<int64_t>(2, (int64_t{64} << 10) / job.block_bytes);
  pool->ParallelFor(static_cast<size_t>(blocks), static_cast<size_t>(grain),
                    [&](size_t begin, size_t end, int) {
                      rows_kernel(&job, static_cast<int64_t>(begin), static_cast<int64_t>(end));
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
  if (w.data == nullptr && w.rows > 0 && w.cols > 0)
    Fail(context, ": ", Name(w.dtype), " weight without data");
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
