// MatMul's kernels for every Highway target (foreach_target), chosen at run time.
//
// Weights are read in their stored type and decoded in registers:
// - F32: loaded as is. BF16: zero-extended to 32 bits and shifted left by 16 (exact).
// - FP8 e4m3: each byte is sign-extended to 16 bits and shifted left by 7, and bit 14 cleared:
//   that is the F16 with the same sign, the magnitude bits one exponent field to the left, i.e.
//   the e4m3 value times 2^-8 exactly (subnormal codes become F16 subnormals, which the F16 ->
//   F32 conversion handles exactly). The 2^8 is folded into the block scale. The two NaN codes
//   (S.1111.111) would decode to ±480: every decoded vector's magnitude bits go into a running
//   maximum, and a row group that met a NaN code is recomputed with the exact scalar decode, so
//   NaN weights give NaN as in the reference.
//   On x86 targets with AVX-512 VBMI the one-token kernel decodes FP8 through byte tables
//   instead (fp8_table-inl.h): exact, NaN codes give NaN, 23 against 19 GB/s in L2 on one core.
//   On the other vector targets it decodes FP8 straight into F32 bits with 16-bit shifts, byte
//   shuffles and masks (fp8_bits-inl.h: the code sign-extended, shifted and masked is the value
//   times 2^-120), falling back to the F16 decode where activations times 2^120 would overflow.
//
// GEMV (one token): groups of 4 rows, x from L1. F32 (and FP8 through F16) read a matrix from
// memory one row after another (one sequential stream), a small one in cache side by side (each x
// load shared by the 4 rows). BF16 and the other FP8 kernels always read 4 far-apart rows side by
// side (ForSpreadRowGroups); on AVX-512
// CPUs with AVX512_BF16 through vdpbf16ps against x split into two BF16 halves, with no decode
// (bf16_pairs-inl.h). FP8 runs one 128-row scale block at a time with x pre-multiplied by that
// block's column scales (Fp8ScaledActivations), so its rows are plain sums too; matrices the loader
// found free of NaN codes skip the NaN check.
//
// Small batches (2 tokens up to MatMul's GEMM threshold): tiles of 4 rows x kTileTokens tokens;
// each weight vector is decoded in registers once per tile and multiplied with every token of the
// tile; FP8 tiles read the tokens' x times the row block's scales, as the GEMV does. The 4 rows go
// side by side (each x load shared by them), or in turn for a matrix from memory with only a few
// tokens (InTurnMaxTokens). Both reduce their accumulators four rows at a time (SumRows4), not with
// one horizontal sum per output. A token's result does not depend on the thread count or on which
// tile it falls in.
#include "kernels/matmul_simd.h"

#include "kernels/simd_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#ifndef WHALE_KERNELS_MATMUL_SIMD_ONCE
#define WHALE_KERNELS_MATMUL_SIMD_ONCE
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/fp8_table.h"
#include "kernels/simd.h"
#include "kernels/stream_prefetch.h"
#include "tensor/dtype.h"

namespace whale {
namespace matmul_detail {

// Set by DisableBf16Pairs (kernels/simd.h) so tests run the F32-decode path on such CPUs too.
inline std::atomic<bool> g_bf16_pairs_disabled{false};

// Exact scalar decodes (edges of rows and NaN recomputation).
inline float Fp8Value(uint8_t code) {
  return F8E4M3ToF32(code);
}
inline float Bf16Value(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

constexpr int kRowGroup = 4;                // rows decoded together
constexpr int64_t kPanelBytes = 256 << 10;  // activations of one token panel (L2 has 1 MiB)
// One-token products through matrices this big read their rows in turn (DotRows): such a
// matrix comes from memory in a decode step, smaller ones are most likely a small model in cache.
constexpr int64_t kInTurnMatrixBytes = 512 << 10;
// Tiles through such a matrix read its rows in turn up to this many tokens: beyond, the x loads
// that the rows no longer share cost more than the one stream gains (TileGroup). Measured on one
// core from DRAM (BM_MatMul, GFLOP/s side by side -> in turn): 2 tokens 1536 x 384 BF16 14 -> 34,
// 2048 x 1408 FP8 27 -> 54; 3 tokens 1536 x 384 BF16 22 -> 33, 2048 x 1408 FP8 43 -> 54 but BF16
// 33 -> 26; 4 tokens 1536 x 384 BF16 29 -> 35, FP8 51 -> 61 but 384 x 1536 FP8 51 -> 46; 8 tokens
// in turn lost everywhere (1536 x 384 BF16 42 -> 37, F32 34 -> 22).
constexpr int64_t InTurnMaxTokens(int64_t cols, bool fp8) {
  if (cols <= 512)
    return 4;          // short rows: four side by side are four streams too short to prefetch
  return fp8 ? 3 : 2;  // FP8's decode outweighs its x loads longer
}

}  // namespace matmul_detail
}  // namespace whale
#endif  // WHALE_KERNELS_MATMUL_SIMD_ONCE

HWY_BEFORE_NAMESPACE();
namespace whale {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using namespace matmul_detail;  // NOLINT: constants shared by all targets

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM_A64
constexpr int kTileTokens = 4;  // 32 vector registers: 16 accumulators + 8 x + 2 weights
#else
constexpr int kTileTokens = 2;  // 16 vector registers: 8 accumulators + 4 x + 2 weights
#endif

// Each decoder turns 2N stored weights starting at p into two F32 vectors, lanes in order
// (Decode2); the unscaled ones also N into one (Decode1).
struct F32Decoder {
  using Storage = float;
  static constexpr bool kScaled = false;
  static constexpr bool kEvenOdd = false;
  HWY_INLINE VF Decode1(DF df, const float* p) { return hn::LoadU(df, p); }
  HWY_INLINE void Decode2(DF df, const float* p, VF& lo, VF& hi) {
    lo = Decode1(df, p);
    hi = Decode1(df, p + hn::Lanes(df));
  }
  static float Scalar(float v) { return v; }
  bool SawNan() const { return false; }
};

struct Bf16Decoder {
  using Storage = uint16_t;
  static constexpr bool kScaled = false;
  HWY_INLINE VF Decode1(DF df, const uint16_t* p) {
    const hn::RebindToUnsigned<DF> du32;
    const hn::Rebind<uint16_t, DF> du16;
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
  }
  HWY_INLINE void Decode2(DF df, const uint16_t* p, VF& lo, VF& hi) {
    lo = Decode1(df, p);
    hi = Decode1(df, p + hn::Lanes(df));
  }
  static float Scalar(uint16_t v) { return Bf16Value(v); }
  bool SawNan() const { return false; }
  // For dot products the order of the 2N weights is free: a 32-bit lane holds the pair (2i,
  // 2i + 1), and a shift and a mask turn it into lane i of the even and the odd vector, with
  // neither the widening shuffles of Decode2 (which bound the one-token kernel in cache) nor a
  // second load; x is put in the same order once for all rows (ToDotOrder). Only the one-token
  // kernel uses it: in a tile each token's x would need the two permutes, as many shuffles as the
  // decode saves (measured 90 -> 74 GFLOP/s at 8 tokens).
#if HWY_TARGET == HWY_SCALAR
  static constexpr bool kEvenOdd = false;
#else
  static constexpr bool kEvenOdd = true;
  HWY_INLINE void DecodeEvenOdd(DF df, const uint16_t* p, VF& even, VF& odd) {
    const hn::RebindToUnsigned<DF> du32;
    const auto pairs = hn::LoadU(du32, reinterpret_cast<const uint32_t*>(p));
    even = hn::BitCast(df, hn::ShiftLeft<16>(pairs));
    odd = hn::BitCast(df, hn::And(pairs, hn::Set(du32, 0xFFFF0000u)));
  }
#endif
};

#if HWY_TARGET == HWY_SCALAR
// One lane: no 16-bit vector twice as wide to decode into; the exact scalar decode (NaN codes
// give NaN directly) times 2^-8, to share the vector path's scale handling.
struct Fp8Decoder {
  using Storage = uint8_t;
  static constexpr bool kScaled = true;
  static constexpr float kVectorScale = 256.0f;
  HWY_INLINE void Decode2(DF df, const uint8_t* p, VF& lo, VF& hi) {
    lo = hn::Set(df, Fp8Value(p[0]) * 0x1p-8f);
    hi = hn::Set(df, Fp8Value(p[1]) * 0x1p-8f);
  }
  static float Scalar(uint8_t v) { return Fp8Value(v); }
  bool SawNan() const { return false; }
};
#else
struct Fp8Decoder {
  using Storage = uint8_t;
  static constexpr bool kScaled = true;
  static constexpr float kVectorScale = 256.0f;  // the vector decode yields value · 2^-8
  using D16 = hn::Repartition<int16_t, DF>;      // 2N lanes
  hn::Vec<D16> max_magnitude;                    // max of (code & 0x7F) << 7 seen so far

  // Spelled out: an implicit constructor would be compiled without the target's attributes
  // (a build without -march=native then fails to inline Zero).
  HWY_INLINE Fp8Decoder() : max_magnitude(hn::Zero(D16())) {}

  HWY_INLINE void Decode2(DF df, const uint8_t* p, VF& lo, VF& hi) {
    const D16 d16;
    const hn::Rebind<int8_t, D16> d8;
    const hn::Half<D16> d16_half;
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto shifted =
        hn::ShiftLeft<7>(hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p))));
    max_magnitude = hn::Max(max_magnitude, hn::And(shifted, hn::Set(d16, int16_t{0x3F80})));
    const auto half = hn::And(shifted, hn::Set(d16, static_cast<int16_t>(0xBFFF)));
    lo = hn::PromoteTo(df, hn::BitCast(dh, hn::LowerHalf(d16_half, half)));
    hi = hn::PromoteTo(df, hn::BitCast(dh, hn::UpperHalf(d16_half, half)));
  }
  static float Scalar(uint8_t v) { return Fp8Value(v); }
  bool SawNan() const {
    const D16 d16;
    HWY_ALIGN int16_t lanes[hn::MaxLanes(d16)];
    hn::Store(max_magnitude, d16, lanes);
    for (size_t i = 0; i < hn::Lanes(d16); ++i)
      if (lanes[i] == 0x3F80) return true;
    return false;
  }
};
#endif

// FP8 for the one-token kernel, whose x already carries each 128-column block's scale and the
// 2^8 of the decode (Fp8ScaledActivations), so a row is one plain sum like BF16's. N codes are
// decoded with half-width integer ops (a 256-bit vector on AVX-512, which Zen 4 runs at twice the
// rate of 512-bit ones) into one F32 vector. Matrices that may hold NaN codes (kTrackNan) keep a
// running maximum of the magnitudes; the loader clears that for checkpoints it scanned.
template <bool kTrackNan>
struct Fp8RowDecoder {
  using Storage = uint8_t;
  static constexpr bool kScaled = false;
  static constexpr bool kEvenOdd = false;
  using D16 = hn::Rebind<int16_t, DF>;  // N lanes
  hn::Vec<D16> max_magnitude;

  HWY_INLINE Fp8RowDecoder() : max_magnitude(hn::Zero(D16())) {}

  HWY_INLINE VF Decode1(DF df, const uint8_t* p) {
    const D16 d16;
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<hwy::float16_t, DF> dh;
    const auto shifted =
        hn::ShiftLeft<7>(hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p))));
    if constexpr (kTrackNan)
      max_magnitude = hn::Max(max_magnitude, hn::And(shifted, hn::Set(d16, int16_t{0x3F80})));
    return hn::PromoteTo(df, hn::BitCast(dh, hn::And(shifted, hn::Set(d16, int16_t(0xBFFF)))));
  }
  HWY_INLINE void Decode2(DF df, const uint8_t* p, VF& lo, VF& hi) {
    lo = Decode1(df, p);
    hi = Decode1(df, p + hn::Lanes(df));
  }
  static float Scalar(uint8_t v) { return Fp8Value(v) * 0x1p-8f; }
  bool SawNan() const {
    if constexpr (!kTrackNan) return false;
    const D16 d16;
    return !hn::AllFalse(d16, hn::Eq(max_magnitude, hn::Set(d16, int16_t{0x3F80})));
  }
};

float ScaleOf(const WeightMatrix& w, int64_t row, int64_t col) {
  const int64_t grid_cols = (w.cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  return w.block_scales[(row / kWeightScaleBlock) * grid_cols + col / kWeightScaleBlock];
}

// The 2N weights at p in the order the dot kernels use (DecodeEvenOdd where the decoder has it,
// else lanes in order), and x's 2N values at the same positions in the same order.
template <class Dec>
HWY_INLINE void DecodeForDot(Dec& dec, DF df, const typename Dec::Storage* p, VF& w0, VF& w1) {
  if constexpr (Dec::kEvenOdd) {
    dec.DecodeEvenOdd(df, p, w0, w1);
  } else {
    dec.Decode2(df, p, w0, w1);
  }
}
template <class Dec>
HWY_INLINE void ToDotOrder(DF df, VF& x0, VF& x1) {
#if HWY_TARGET != HWY_SCALAR  // no decoder is even/odd there
  if constexpr (Dec::kEvenOdd) {
    const VF even = hn::ConcatEven(df, x1, x0);
    x1 = hn::ConcatOdd(df, x1, x0);
    x0 = even;
  }
#else
  (void)df, (void)x0, (void)x1;
#endif
}

// Makes the compiler hold v in a register: GCC otherwise folds a load that several multiply-adds
// share into each of them as a memory operand, and the tiles' loads then outnumber their
// multiply-adds (Zen 4 issues one 512-bit load per cycle and one 512-bit FMA).
HWY_INLINE void KeepInRegister(VF& v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 && defined(__GNUC__)
  asm("" : "+v"(v.raw));  // any of the 32 vector registers
#elif HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128 && defined(__GNUC__)
  asm("" : "+x"(v.raw));
#else
  (void)v;
#endif
}

#include "kernels/sum_rows-inl.h"  // SumRows4

// Columns summed in one accumulator before the total: FP8's 128-column scale block, else the row.
template <class Dec>
int64_t BlockColumns(int64_t cols) {
  return Dec::kScaled ? kWeightScaleBlock : std::max<int64_t>(cols, 1);
}

// Where each of the group's rows starts in w's storage.
template <class Dec>
HWY_INLINE std::array<const typename Dec::Storage*, kRowGroup> RowStarts(
    const WeightMatrix& w, const int64_t (&row)[kRowGroup]) {
  std::array<const typename Dec::Storage*, kRowGroup> starts;
  for (int r = 0; r < kRowGroup; ++r)
    starts[r] = static_cast<const typename Dec::Storage*>(w.data) + row[r] * w.cols;
  return starts;
}

// The rows of the group starting at r0 (n_rows of them, at most kRowGroup): a short group repeats
// its last row, whose results are then dropped.
HWY_INLINE void GroupRows(int64_t r0, int n_rows, int64_t (&row)[kRowGroup]) {
  for (int r = 0; r < kRowGroup; ++r) row[r] = r0 + std::min(r, n_rows - 1);
}

// body(row, n_rows) for row groups that cover [begin, end) once, read side by side. Group i holds
// rows begin + i + j * part (j < kRowGroup, part = (end - begin) / kRowGroup): four far-apart
// sequential streams, which one core reads from DRAM faster than one (~20 % on the 2026-12
// Zen 5 VM, 4 streams 34-38 GB/s vs 30-31; a probe of the kind in kernels/probe.h) and far
// faster than four adjacent rows, four streams that each end after one row. The last
// (end - begin) % kRowGroup rows form one short group.
template <class Body>
HWY_INLINE void ForSpreadRowGroups(int64_t begin, int64_t end, const Body& body) {
  const int64_t part = (end - begin) / kRowGroup;
  int64_t row[kRowGroup];
  for (int64_t i = 0; i < part; ++i) {
    for (int r = 0; r < kRowGroup; ++r) row[r] = begin + i + r * part;
    body(row, kRowGroup);
  }
  const int64_t rest = begin + kRowGroup * part;
  if (rest < end) {
    GroupRows(rest, static_cast<int>(end - rest), row);
    body(row, static_cast<int>(end - rest));
  }
}

// Exact fallback for one row and one token (rows holding a NaN code): F32 sums per scale block,
// like the vector path, with the exact scalar decode.
template <class Dec>
float DotRowScalar(const WeightMatrix& w, int64_t row, const float* x) {
  const auto* wr = static_cast<const typename Dec::Storage*>(w.data) + row * w.cols;
  float total = 0.0f;
  const int64_t block = BlockColumns<Dec>(w.cols);
  for (int64_t k0 = 0; k0 < w.cols; k0 += block) {
    float sum = 0.0f;
    for (int64_t k = k0; k < std::min(w.cols, k0 + block); ++k) sum += x[k] * Dec::Scalar(wr[k]);
    total += Dec::kScaled ? sum * ScaleOf(w, row, k0) : sum;
  }
  return total;
}

// out[r] = x · W[row[r]] for kRowGroup rows, weights decoded in registers. True when a row met a
// NaN code: out is then to be recomputed exactly.
// - Side by side (kInTurn false): each x vector is loaded (for BF16 also put in dot order) once
//   for the 4 rows, two accumulators per row.
// - In turn: the rows one after another, so the weights are one sequential stream instead of four
//   interleaved ones, which the hardware prefetcher follows far better; four accumulators per
//   row. Matrices of at least kInTurnMatrixBytes go this way, but BF16 no longer (GemvRows). One
//   core, BM_MatMul, one token from DRAM, on an earlier VM, side by side -> in turn: 7168 x 2048
//   BF16 16-18 -> 22-30 GB/s, FP8 11-13 -> 16-18, F32
//   19-21 -> 21-29; 32768 x 512 (V3's kv_b) FP8 8.5-10.5 -> 13.5-15.3. But 256-column matrices
//   in cache ran at half the speed in turn (x's loads and permutes are no longer shared by 4 rows,
//   and the loops are short).
template <class Dec, bool kInTurn>
HWY_INLINE bool DotRows(const WeightMatrix& w, const int64_t (&row)[kRowGroup], const float* x,
                        float (&out)[kRowGroup]) {
  static_assert(!Dec::kScaled, "FP8 rows are read against x times their scales (Fp8RowDecoder)");
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t step = 2 * lanes;
  const int64_t cols = w.cols;
  const auto wr = RowStarts<Dec>(w, row);
  Dec dec;
  VF total[kRowGroup];
  float tail[kRowGroup] = {};
  if constexpr (kInTurn) {
    static_assert(!Dec::kEvenOdd, "BF16 reads side by side (GemvRows): x would need reordering");
    for (int r = 0; r < kRowGroup; ++r) {
      VF acc0 = hn::Zero(df), acc1 = hn::Zero(df), acc2 = hn::Zero(df), acc3 = hn::Zero(df);
      int64_t k = 0;
      for (; k + 2 * step <= cols; k += 2 * step) {
        VF x0 = hn::LoadU(df, x + k), x1 = hn::LoadU(df, x + k + lanes);
        VF x2 = hn::LoadU(df, x + k + step), x3 = hn::LoadU(df, x + k + step + lanes);
        VF w0, w1, w2, w3;
        DecodeForDot(dec, df, wr[r] + k, w0, w1);
        DecodeForDot(dec, df, wr[r] + k + step, w2, w3);
        acc0 = hn::MulAdd(w0, x0, acc0);
        acc1 = hn::MulAdd(w1, x1, acc1);
        acc2 = hn::MulAdd(w2, x2, acc2);
        acc3 = hn::MulAdd(w3, x3, acc3);
      }
      for (; k + lanes <= cols; k += lanes)
        acc0 = hn::MulAdd(dec.Decode1(df, wr[r] + k), hn::LoadU(df, x + k), acc0);
      for (; k < cols; ++k) tail[r] += x[k] * Dec::Scalar(wr[r][k]);
      total[r] = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
    }
  } else {
    VF acc0[kRowGroup], acc1[kRowGroup];
    for (int r = 0; r < kRowGroup; ++r) acc0[r] = acc1[r] = hn::Zero(df);
    int64_t k = 0;
    for (; k + step <= cols; k += step) {
      VF x0 = hn::LoadU(df, x + k);
      VF x1 = hn::LoadU(df, x + k + lanes);
      ToDotOrder<Dec>(df, x0, x1);
      for (int r = 0; r < kRowGroup; ++r) {
        VF w0, w1;
        DecodeForDot(dec, df, wr[r] + k, w0, w1);
        acc0[r] = hn::MulAdd(w0, x0, acc0[r]);
        acc1[r] = hn::MulAdd(w1, x1, acc1[r]);
      }
    }
    for (; k + lanes <= cols; k += lanes) {
      const VF x0 = hn::LoadU(df, x + k);
      for (int r = 0; r < kRowGroup; ++r)
        acc0[r] = hn::MulAdd(dec.Decode1(df, wr[r] + k), x0, acc0[r]);
    }
    for (; k < cols; ++k)
      for (int r = 0; r < kRowGroup; ++r) tail[r] += x[k] * Dec::Scalar(wr[r][k]);
    for (int r = 0; r < kRowGroup; ++r) total[r] = hn::Add(acc0[r], acc1[r]);
  }
  SumRows4(df, total, out);
  for (int r = 0; r < kRowGroup; ++r) out[r] += tail[r];
  return dec.SawNan();
}

// y[row] = x · W[row] for one token, rows [row_begin, row_end) of w read through Dec; a group
// that met a NaN code is recomputed with the exact scalar decode.
template <class Dec, class ExactDec = Dec>
void GemvRows(float* y, const float* x, const float* x_exact, const WeightMatrix& w,
              int64_t row_begin, int64_t row_end) {
  // BF16 (the even/odd decoder) stays side by side: in turn, every row puts the same x vectors in
  // dot order again (two permutes per 64 bytes of weights), and even with x reordered once per
  // call the one stream did not pay on the AVX-512 (Zen 5) development VM of 2026-12-01. One
  // core, 1024 x 1536 in cache: in turn 31 GB/s, with x reordered once 50-52, side by side 61;
  // from DRAM (512 MiB of copies) 7168 x 2048: 13.7 / 17.7-19.3 / 19.5-26.7, 384 x 1536:
  // 13.9 / 17.2-18.8 / 22.5-25.4; small-v3 BF16 decode, 1 thread: 34-35 tok/s in turn with x
  // reordered once, 40-44 side by side.
  const bool in_turn =
      w.rows * w.cols * static_cast<int64_t>(sizeof(typename Dec::Storage)) >= kInTurnMatrixBytes;
  const auto rows = [&](const int64_t(&row)[kRowGroup], int n_rows, auto in_turn_tag) {
    float out[kRowGroup];
    if (DotRows<Dec, decltype(in_turn_tag)::value>(w, row, x, out))
      for (int r = 0; r < kRowGroup; ++r) out[r] = DotRowScalar<ExactDec>(w, row[r], x_exact);
    for (int r = 0; r < n_rows; ++r) y[row[r]] = out[r];
  };
  if constexpr (Dec::kEvenOdd) {  // BF16: 4 far-apart rows side by side
    ForSpreadRowGroups(row_begin, row_end, [&](const int64_t(&row)[kRowGroup], int n_rows) {
      rows(row, n_rows, std::false_type());
    });
  } else {
    for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowGroup) {
      const int n_rows = static_cast<int>(std::min<int64_t>(kRowGroup, row_end - r0));
      int64_t row[kRowGroup];
      GroupRows(r0, n_rows, row);
      if (in_turn)
        rows(row, n_rows, std::true_type());
      else
        rows(row, n_rows, std::false_type());
    }
  }
}

// xs[cols] = x times the scales of FP8 row block rb and the 2^8 Fp8RowDecoder leaves out: with
// it a row's dot needs no per-block sums.
void Fp8ScaledActivations(float* xs, const float* x, const WeightMatrix& w, int64_t rb) {
  const int64_t grid_cols = (w.cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  for (int64_t cb = 0; cb < grid_cols; ++cb) {
    const float s = w.block_scales[rb * grid_cols + cb] * Fp8Decoder::kVectorScale;
    for (int64_t k = cb * kWeightScaleBlock; k < std::min(w.cols, (cb + 1) * kWeightScaleBlock);
         ++k)
      xs[k] = x[k] * s;
  }
}

// One token through FP8 weights decoded through F16, one 128-row scale block at a time.
template <bool kTrackNan>
void GemvRowsFp8F16(float* y, const float* x, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end) {
  thread_local std::vector<float> scaled;  // [cols], grows only: no allocation per decode step
  if (static_cast<int64_t>(scaled.size()) < w.cols) scaled.resize(static_cast<size_t>(w.cols));
  for (int64_t b0 = row_begin; b0 < row_end;) {
    const int64_t rb = b0 / kWeightScaleBlock;
    const int64_t b1 = std::min(row_end, (rb + 1) * kWeightScaleBlock);
    Fp8ScaledActivations(scaled.data(), x, w, rb);
    GemvRows<Fp8RowDecoder<kTrackNan>, Fp8Decoder>(y, scaled.data(), x, w, b0, b1);
    b0 = b1;
  }
}

#include "kernels/bf16_pairs-inl.h"  // GemvRowsBf16Pairs on AVX-512 CPUs with AVX512_BF16
#include "kernels/fp8_span-inl.h"    // ForFp8Spans: the FP8 one-token kernels' row blocks

// After ForFp8Spans, which both use (a block of their own keeps clang-format from sorting them
// above it).
#include "kernels/fp8_bits-inl.h"   // GemvRowsFp8Bits on the other vector targets
#include "kernels/fp8_table-inl.h"  // GemvRowsFp8Table on AVX-512 VBMI targets

// dst[cols] = row `row` of W in F32 (FP8: value · scale, rounded once).
template <class Dec>
void DecodeRow(float* dst, const WeightMatrix& w, int64_t row) {
  using Storage = typename Dec::Storage;
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t cols = w.cols;
  const Storage* src = static_cast<const Storage*>(w.data) + row * cols;
  Dec dec;
  int64_t k = 0;
  for (; k + 2 * lanes <= cols; k += 2 * lanes) {
    VF lo, hi;
    dec.Decode2(df, src + k, lo, hi);
    if constexpr (Dec::kScaled) {
      // 2N divides the 128-column block, so one scale covers both vectors.
      const VF scale = hn::Set(df, ScaleOf(w, row, k) * Dec::kVectorScale);
      lo = hn::Mul(lo, scale);
      hi = hn::Mul(hi, scale);
    }
    hn::StoreU(lo, df, dst + k);
    hn::StoreU(hi, df, dst + k + lanes);
  }
  const bool redo_all = dec.SawNan();
  for (int64_t j = redo_all ? 0 : k; j < cols; ++j) {
    const float v = Dec::Scalar(src[j]);
    dst[j] = Dec::kScaled ? v * ScaleOf(w, row, j) : v;
  }
}

// out[t][r] = x[t] · W[row[r]] for kTokens tokens and kRowGroup rows: each weight vector is
// decoded once in registers and used by every token. A token's result depends only on its row
// group, not on which tile it falls in or on kTokens. True when a row met a NaN code: out is then
// to be recomputed exactly.
// - Side by side (kInTurn false): the 4 rows advance together, so each load of the tokens' x feeds
//   4 rows; one accumulator per (t, r).
// - In turn: one row after another, as DotRows does, so a matrix from memory is one sequential
//   stream; two accumulators per token, x loaded per row (from L1).
template <class Dec, int kTokens, bool kInTurn>
HWY_INLINE bool TileGroup(const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                          const float* const* x, float (*out)[kRowGroup]) {
  static_assert(!Dec::kScaled, "FP8 rows are read against x times their scales (Fp8RowDecoder)");
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t step = 2 * lanes;
  const int64_t cols = w.cols;
  const auto wr = RowStarts<Dec>(w, row);
  Dec dec;
  VF acc[kTokens][kRowGroup];
  float tail[kTokens][kRowGroup] = {};
  int64_t k_end = 0;  // the first column the vector loops left
  if constexpr (kInTurn) {
    for (int r = 0; r < kRowGroup; ++r) {
      VF acc0[kTokens], acc1[kTokens];
      for (int t = 0; t < kTokens; ++t) acc0[t] = acc1[t] = hn::Zero(df);
      int64_t k = 0;
      for (; k + step <= cols; k += step) {
        VF w0, w1;
        dec.Decode2(df, wr[r] + k, w0, w1);
        for (int t = 0; t < kTokens; ++t) {
          acc0[t] = hn::MulAdd(w0, hn::LoadU(df, x[t] + k), acc0[t]);
          acc1[t] = hn::MulAdd(w1, hn::LoadU(df, x[t] + k + lanes), acc1[t]);
        }
      }
      for (; k + lanes <= cols; k += lanes) {
        const VF wv = dec.Decode1(df, wr[r] + k);
        for (int t = 0; t < kTokens; ++t)
          acc0[t] = hn::MulAdd(wv, hn::LoadU(df, x[t] + k), acc0[t]);
      }
      for (int t = 0; t < kTokens; ++t) acc[t][r] = hn::Add(acc0[t], acc1[t]);
      k_end = k;
    }
  } else {
    for (int t = 0; t < kTokens; ++t)
      for (int r = 0; r < kRowGroup; ++r) acc[t][r] = hn::Zero(df);
    int64_t k = 0;
    for (; k + step <= cols; k += step) {
      // The tokens' activations stay in registers for the 4 rows: 2·kTokens loads of x and 4
      // weight decodes feed 8·kTokens multiply-adds.
      VF x0[kTokens], x1[kTokens];
      for (int t = 0; t < kTokens; ++t) {
        x0[t] = hn::LoadU(df, x[t] + k);
        x1[t] = hn::LoadU(df, x[t] + k + lanes);
        KeepInRegister(x0[t]);
        KeepInRegister(x1[t]);
      }
      for (int r = 0; r < kRowGroup; ++r) {
        VF w0, w1;
        dec.Decode2(df, wr[r] + k, w0, w1);
        for (int t = 0; t < kTokens; ++t)
          acc[t][r] = hn::MulAdd(w1, x1[t], hn::MulAdd(w0, x0[t], acc[t][r]));
      }
    }
    // One more vector when it fits (attention's cache rows are 64 + 16 columns wide).
    for (; k + lanes <= cols; k += lanes)
      for (int r = 0; r < kRowGroup; ++r) {
        const VF wv = dec.Decode1(df, wr[r] + k);
        for (int t = 0; t < kTokens; ++t)
          acc[t][r] = hn::MulAdd(wv, hn::LoadU(df, x[t] + k), acc[t][r]);
      }
    k_end = k;
  }
  for (int64_t k = k_end; k < cols; ++k)
    for (int r = 0; r < kRowGroup; ++r) {
      const float v = Dec::Scalar(wr[r][k]);
      for (int t = 0; t < kTokens; ++t) tail[t][r] += x[t][k] * v;
    }
  for (int t = 0; t < kTokens; ++t) {
    SumRows4(df, acc[t], out[t]);
    for (int r = 0; r < kRowGroup; ++r) out[t][r] += tail[t][r];
  }
  return dec.SawNan();
}

// One tile of `count` tokens (1 to kTileTokens) through TileGroup.
template <class Dec, bool kInTurn>
HWY_INLINE bool TileGroupOf(int count, const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                            const float* const* x, float (*out)[kRowGroup]) {
  switch (count) {
    case 1:
      return TileGroup<Dec, 1, kInTurn>(w, row, x, out);
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM_A64
    case 3:
      return TileGroup<Dec, 3, kInTurn>(w, row, x, out);
    case 4:
      return TileGroup<Dec, 4, kInTurn>(w, row, x, out);
#endif
    default:
      return TileGroup<Dec, 2, kInTurn>(w, row, x, out);
  }
}

// Tiles of kTileTokens tokens, the last one shorter. Many tokens go in panels whose activations
// stay in L2 while a task's 16 weight rows (in L1 / L2) pass over them: without panels every row
// group would stream all n tokens' activations from L3. FP8 (Dec = Fp8RowDecoder, ExactDec =
// Fp8Decoder) reads the panel's activations times its row block's scales, made once per block
// and panel; a group that met a NaN code is recomputed from x with ExactDec.
template <class Dec, class ExactDec = Dec>
void TileRows(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
              int64_t row_end) {
  constexpr bool kScaleActivations = ExactDec::kScaled && !Dec::kScaled;
  const int64_t cols = w.cols;
  using Storage = typename Dec::Storage;
  const bool in_turn =
      w.rows * cols * static_cast<int64_t>(sizeof(Storage)) >= kInTurnMatrixBytes &&
      n <= InTurnMaxTokens(cols, sizeof(Storage) == 1);
  const int64_t panel = std::max<int64_t>(
      kTileTokens, kPanelBytes / std::max<int64_t>(1, cols * 4) / kTileTokens * kTileTokens);
  thread_local std::vector<float> scaled;  // [panel tokens, cols], grows only
  int64_t scaled_block = -1, scaled_panel = -1;
  for (int64_t s0 = row_begin; s0 < row_end; s0 += kMatMulRowsPerTask) {
    const int64_t s1 = std::min(row_end, s0 + kMatMulRowsPerTask);
    for (int64_t p0 = 0; p0 < n; p0 += panel) {
      const int64_t p1 = std::min(n, p0 + panel);
      const float* xp = x + p0 * cols;  // the panel as the tiles read it: [p1 - p0, cols]
      if constexpr (kScaleActivations) {
        const int64_t rb = s0 / kWeightScaleBlock;  // a task's 16 rows share one row block
        if (rb != scaled_block || p0 != scaled_panel) {
          if (static_cast<int64_t>(scaled.size()) < (p1 - p0) * cols)
            scaled.resize(static_cast<size_t>((p1 - p0) * cols));
          for (int64_t t = p0; t < p1; ++t)
            Fp8ScaledActivations(scaled.data() + (t - p0) * cols, x + t * cols, w, rb);
          scaled_block = rb;
          scaled_panel = p0;
        }
        xp = scaled.data();
      }
      for (int64_t r0 = s0; r0 < s1; r0 += kRowGroup) {
        const int n_rows = static_cast<int>(std::min<int64_t>(kRowGroup, s1 - r0));
        int64_t row[kRowGroup];
        GroupRows(r0, n_rows, row);
        for (int64_t t0 = p0; t0 < p1; t0 += kTileTokens) {
          const int count = static_cast<int>(std::min<int64_t>(kTileTokens, p1 - t0));
          const float* xt[kTileTokens];
          for (int i = 0; i < kTileTokens; ++i)
            xt[i] = xp + (t0 - p0 + std::min(i, count - 1)) * cols;
          float out[kTileTokens][kRowGroup];
          const bool saw_nan = in_turn ? TileGroupOf<Dec, true>(count, w, row, xt, out)
                                       : TileGroupOf<Dec, false>(count, w, row, xt, out);
          if (saw_nan)
            for (int i = 0; i < count; ++i)
              for (int r = 0; r < kRowGroup; ++r)
                out[i][r] = DotRowScalar<ExactDec>(w, row[r], x + (t0 + i) * cols);
          for (int i = 0; i < count; ++i)
            for (int r = 0; r < n_rows; ++r) y[(t0 + i) * w.rows + r0 + r] = out[i][r];
        }
      }
    }
  }
}

template <class Dec>
void RowsFor(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
             int64_t row_end) {
  if (n == 1) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    if constexpr (std::is_same_v<Dec, Bf16Decoder>)
      if (Bf16PairsAvailable()) return GemvRowsBf16Pairs(y, x, w, row_begin, row_end);
#endif
    GemvRows<Dec>(y, x, x, w, row_begin, row_end);
  } else {
    TileRows<Dec>(y, x, n, w, row_begin, row_end);
  }
}

// FP8 rows are read through Fp8RowDecoder against x times their row block's scales.
template <bool kTrackNan>
void Fp8RowsFor(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
                int64_t row_end) {
  if (n == 1) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3_DL
    GemvRowsFp8Table(y, x, w, row_begin, row_end);  // NaN codes decode to NaN there
#elif HWY_TARGET != HWY_SCALAR
    GemvRowsFp8Bits<kTrackNan>(y, x, w, row_begin, row_end);
#else
    GemvRowsFp8F16<kTrackNan>(y, x, w, row_begin, row_end);
#endif
  } else {
    TileRows<Fp8RowDecoder<kTrackNan>, Fp8Decoder>(y, x, n, w, row_begin, row_end);
  }
}

}  // namespace

void MatMulRowsImpl(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end) {
  switch (w.dtype) {
    case DType::F32:
      return RowsFor<F32Decoder>(y, x, n, w, row_begin, row_end);
    case DType::BF16:
      return RowsFor<Bf16Decoder>(y, x, n, w, row_begin, row_end);
    default:
      if (w.fp8_nan_free) return Fp8RowsFor<false>(y, x, n, w, row_begin, row_end);
      return Fp8RowsFor<true>(y, x, n, w, row_begin, row_end);
  }
}

void DecodeRowsImpl(float* dst, const WeightMatrix& w, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    float* out = dst + (r - row_begin) * w.cols;
    switch (w.dtype) {
      case DType::F32:
        DecodeRow<F32Decoder>(out, w, r);
        break;
      case DType::BF16:
        DecodeRow<Bf16Decoder>(out, w, r);
        break;
      default:
        DecodeRow<Fp8Decoder>(out, w, r);
        break;
    }
  }
}

const char* TargetNameImpl() {
  return hwy::TargetName(HWY_TARGET);
}

bool Bf16PairsActiveImpl() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  return Bf16PairsAvailable();
#else
  return false;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace whale
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(MatMulRowsImpl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(Bf16PairsActiveImpl);
HWY_EXPORT(DecodeRowsImpl);

void DecodeRowsSimd(float* dst, const WeightMatrix& w, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(DecodeRowsImpl)(dst, w, row_begin, row_end);
}

void MatMulRowsSimd(float* y, const float* x, int64_t n, const WeightMatrix& w, int64_t row_begin,
                    int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulRowsImpl)(y, x, n, w, row_begin, row_end);
}

std::vector<int64_t> SupportedSimdTargets() {
  return hwy::SupportedAndGeneratedTargets();
}

void ForceSimdTarget(int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
}

std::string SimdTargetName(int64_t target) {
  return hwy::TargetName(target);
}

std::string ActiveSimdTargetName() {
  return HWY_DYNAMIC_DISPATCH(TargetNameImpl)();
}

bool Bf16PairsActive() {
  return HWY_DYNAMIC_DISPATCH(Bf16PairsActiveImpl)();
}

void DisableBf16Pairs(bool disabled) {
  matmul_detail::g_bf16_pairs_disabled.store(disabled, std::memory_order_relaxed);
}

}  // namespace whale
#endif  // HWY_ONCE
