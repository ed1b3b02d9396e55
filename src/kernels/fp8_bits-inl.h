// FP8 e4m3 rows of the one-token kernel decoded straight into F32 bits with integer ops, for the
// vector targets without AVX-512 VBMI (AVX2, SSE4, AVX-512 without VBMI, NEON, ...). Included by
// matmul_simd.cc inside its per-target namespace, after SumRows4, kRowGroup, DotRowScalar,
// Fp8Decoder, GemvRowsFp8F16 and ForFp8Spans.
//
// A code sign-extended and shifted so that its sign lands on bit 31 and its magnitude on bits
// 20-26, with bits 27-30 (copies of the sign) and 0-19 cleared, is the F32 of its value times
// 2^-120 (exponent bias 127 against 7; subnormal codes become F32 subnormals, exactly). x carries
// each block's scale times 2^120 (Fp8BitsScaledActivations), so the products are the exact
// decode's; where that would overflow, GemvRowsFp8Bits reads the rows through F16 instead.
//
// A vector of 4N codes becomes four F32 vectors of N with two 16-bit arithmetic shifts, three byte
// shuffles within 128-bit blocks and four masks (Fp8BitsDecode):
//   odd  = the codes as 16-bit lanes, shifted right by 4: lane i holds code 2i + 1 sign-extended
//          and shifted left by 4 (its low 4 bits hold code 2i's top nibble, which the masks clear);
//   even = the same after a shuffle that copies code 2i into byte 2i + 1;
//   F32 lane i of codes 4i + 3 and 4i + 2: odd and even masked with 0x87F00000; of codes 4i + 1
//   and 4i: the same after a shuffle that copies each lane's low 16 bits into its high 16 bits.
// The earlier decode sign-extended N codes to 32 bits, shifted and masked them: 12 integer ops per
// 4N codes (8 of them shifts and widening shuffles) where this has 9 (5), beside the 4 FMAs. One
// Zen 2 (AVX2) core, 2026-12-03, a loop of each over four rows of 2048 codes in L2: 16.5
// against 20.2 GB/s (from DRAM 14.1 / 15.3); BM_ExpertStep FP8 (eight V2-Lite experts from
// DRAM) 10.8-11.1 -> 12.5-13.7 GB/s with 1 thread, 17.8-18.1 -> 21.4-23.4 with 2; whale bench
// small-v3 FP8 decode with 1 thread 48.5-50.0 -> 52.8-55.5 tok/s. The running prefetch
// (kFp8BitsPrefetchBytes) was within the noise there either way (12.5-13.3 GB/s off, 13.4-13.7 on).
// Rows are read four far-apart rows side by side (ForSpreadRowGroups), as BF16's are: with the
// earlier decode, a decode step's eight V2-Lite FP8 experts (BM_ExpertStep) on one Zen 2 core read
// at 10.8-11.1 GB/s so against 8.3-9.0 in turn (2 threads 17.8-18.1 against 13.6-15.3), and
// small-v3 FP8 decoded at 48.5-50.0 tok/s with 1 thread against 37.0-40.2.
// The lanes come out of order (vector j, lane i: code 4i + j of the chunk), and x is stored in
// that order when it is scaled, padded with zeros to a whole chunk; the last, partial chunk of a
// row is decoded from a zero-padded copy.

#if HWY_TARGET != HWY_SCALAR && !(HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3_DL)

using DU8 = hn::Repartition<uint8_t, DF>;   // 4N lanes: one chunk of codes
using DI16 = hn::Repartition<int16_t, DF>;  // 2N lanes
using DI32 = hn::RebindToSigned<DF>;        // N lanes

// How far ahead of its reads each row stream asks for lines into L2, where the CPU gains from it
// (RunningStreamPrefetch).
constexpr int64_t kFp8BitsPrefetchBytes = 2048;

// Codes per chunk: four F32 vectors.
HWY_INLINE int64_t Fp8BitsChunk() {
  return static_cast<int64_t>(hn::Lanes(DU8()));
}

// The shuffles' and masks' constants, loaded once per row group so that they stay in registers.
struct Fp8BitsRegisters {
  hn::Vec<DU8> even_to_odd;  // byte 2i + 1 <- byte 2i (per 128-bit block)
  hn::Vec<DU8> low_to_high;  // bytes 4i + 2, 4i + 3 <- bytes 4i, 4i + 1
  hn::Vec<DI32> f32_bits;    // 0x87F00000: the sign and the 7 magnitude bits
  hn::Vec<DI16> magnitude;   // 0x07F0: a 16-bit lane's magnitude bits (NaN codes: all set)
};

// A function, not default member initializers: an implicit constructor would not get the
// target's attributes, and builds without -march=native could not inline the intrinsics.
HWY_INLINE Fp8BitsRegisters LoadFp8BitsRegisters() {
  alignas(16) static constexpr uint8_t kEvenToOdd[16] = {0, 0, 2,  2,  4,  4,  6,  6,
                                                         8, 8, 10, 10, 12, 12, 14, 14};
  alignas(16) static constexpr uint8_t kLowToHigh[16] = {0, 1, 0, 1, 4,  5,  4,  5,
                                                         8, 9, 8, 9, 12, 13, 12, 13};
  const DU8 du8;
  return {hn::LoadDup128(du8, kEvenToOdd), hn::LoadDup128(du8, kLowToHigh),
          hn::Set(DI32(), static_cast<int32_t>(0x87F00000u)), hn::Set(DI16(), int16_t{0x07F0})};
}

// f32[j] lane i = code 4i + j of `codes` as F32 bits (the value times 2^-120). kTrackNan: the
// codes' magnitudes go into the running maximum `max_magnitude` (a NaN code's is 0x07F0).
template <bool kTrackNan>
HWY_INLINE void Fp8BitsDecode(const Fp8BitsRegisters& c, hn::Vec<DU8> codes, VF (&f32)[4],
                              hn::Vec<DI16>& max_magnitude) {
  const DF df;
  const DI16 di16;
  const DI32 di32;
  const DU8 du8;
  const auto odd = hn::ShiftRight<4>(hn::BitCast(di16, codes));
  const auto even =
      hn::ShiftRight<4>(hn::BitCast(di16, hn::TableLookupBytes(codes, c.even_to_odd)));
  if constexpr (kTrackNan) {
    max_magnitude = hn::Max(max_magnitude, hn::And(odd, c.magnitude));
    max_magnitude = hn::Max(max_magnitude, hn::And(even, c.magnitude));
  }
  const auto bits = [&](hn::Vec<DI16> v) { return hn::And(hn::BitCast(di32, v), c.f32_bits); };
  const auto low_up = [&](hn::Vec<DI16> v) {
    return hn::BitCast(di16, hn::TableLookupBytes(hn::BitCast(du8, v), c.low_to_high));
  };
  f32[0] = hn::BitCast(df, bits(low_up(even)));
  f32[1] = hn::BitCast(df, bits(low_up(odd)));
  f32[2] = hn::BitCast(df, bits(even));
  f32[3] = hn::BitCast(df, bits(odd));
}

// xs[cols rounded up to a chunk] = x times the scales of FP8 row block rb and 2^120, in the
// decode's order (chunk vector j, lane i: column 4i + j), zero past cols. False when a value is
// not finite (x not finite, or x · scale · 2^120 past F32's range).
inline bool Fp8BitsScaledActivations(float* xs, const float* x, const WeightMatrix& w, int64_t rb) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t chunk = Fp8BitsChunk();  // divides the 128-column scale block
  const int64_t grid_cols = (w.cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  bool finite = true;
  for (int64_t k0 = 0; k0 < w.cols; k0 += chunk) {
    const float scale = w.block_scales[rb * grid_cols + k0 / kWeightScaleBlock] * 0x1p120f;
    for (int64_t c = 0; c < chunk; ++c) {
      const float v = k0 + c < w.cols ? x[k0 + c] * scale : 0.0f;
      finite &= std::abs(v) <= std::numeric_limits<float>::max();
      xs[k0 + (c % 4) * lanes + c / 4] = v;
    }
  }
  return finite;
}

// out[r] = xs[r] · W[row[r]] for kRowGroup FP8 rows read side by side (two accumulators per row),
// each xs[r] from Fp8BitsScaledActivations for its row's scale block. kOneBlock: the rows share
// one scale block and xs[0], whose vectors are then loaded once for the four. True when a row
// met a NaN code (kTrackNan): out is then to be recomputed exactly.
template <bool kTrackNan, bool kOneBlock>
HWY_INLINE bool DotRowsFp8Bits(const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                               const float* const (&xs)[kRowGroup], bool prefetch,
                               float (&out)[kRowGroup]) {
  const DF df;
  const DU8 du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t chunk = Fp8BitsChunk();
  const int64_t cols = w.cols;
  const int64_t full = cols / chunk * chunk;
  const Fp8BitsRegisters c = LoadFp8BitsRegisters();
  auto max_magnitude = hn::Zero(DI16());
  const uint8_t* wr[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) wr[r] = static_cast<const uint8_t*>(w.data) + row[r] * cols;
  VF acc[kRowGroup][2];
  for (int r = 0; r < kRowGroup; ++r) acc[r][0] = acc[r][1] = hn::Zero(df);
  // codes(r): row r's chunk at k, loaded as its turn comes (loading the four rows' first needs
  // four more of AVX2's 16 registers, and GCC then spilled an accumulator and loaded twice).
  const auto add_chunk = [&](int64_t k, const auto& codes) {
    VF shared_x[4];
    if constexpr (kOneBlock)
      for (int j = 0; j < 4; ++j) shared_x[j] = hn::Load(df, xs[0] + k + j * lanes);
    for (int r = 0; r < kRowGroup; ++r) {
      VF f32[4];
      Fp8BitsDecode<kTrackNan>(c, codes(r), f32, max_magnitude);
      VF x[4];
      for (int j = 0; j < 4; ++j)
        x[j] = kOneBlock ? shared_x[j] : hn::Load(df, xs[r] + k + j * lanes);
      acc[r][0] = hn::MulAdd(f32[0], x[0], acc[r][0]);
      acc[r][1] = hn::MulAdd(f32[1], x[1], acc[r][1]);
      acc[r][0] = hn::MulAdd(f32[2], x[2], acc[r][0]);
      acc[r][1] = hn::MulAdd(f32[3], x[3], acc[r][1]);
    }
  };
  for (int64_t k = 0; k < full; k += chunk) {
    add_chunk(k, [&](int r) {
      // (address, read, locality 2): prefetcht1 on x86; past the matrix's end it never faults.
      if (prefetch) __builtin_prefetch(wr[r] + k + kFp8BitsPrefetchBytes, 0, 2);
      return hn::LoadU(du8, wr[r] + k);
    });
  }
  if (full < cols) {
    HWY_ALIGN uint8_t padded[kRowGroup][hn::MaxLanes(du8)] = {};
    for (int r = 0; r < kRowGroup; ++r) std::copy(wr[r] + full, wr[r] + cols, padded[r]);
    add_chunk(full, [&](int r) { return hn::Load(du8, padded[r]); });
  }
  VF total[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) total[r] = hn::Add(acc[r][0], acc[r][1]);
  SumRows4(df, total, out);
  if constexpr (!kTrackNan) return false;
  return !hn::AllFalse(DI16(), hn::Eq(max_magnitude, c.magnitude));
}

// y[row] = x · W[row] for one token, FP8 rows [row_begin, row_end), one 128-row scale block at a
// time, or for narrow rows a span of several (Fp8SpanBlocks); a span where x times a block's
// scales and 2^120 is not finite somewhere is read through F16 (GemvRowsFp8F16).
template <bool kTrackNan>
void GemvRowsFp8Bits(float* y, const float* x, const WeightMatrix& w, int64_t row_begin,
                     int64_t row_end) {
  const int64_t chunk = Fp8BitsChunk();
  const int64_t padded = (w.cols + chunk - 1) / chunk * chunk;
  const bool prefetch = RunningStreamPrefetch();
  ForFp8Spans(
      w, row_begin, row_end, padded, kFp8BitsPrefetchBytes,
      [&](float* xs, int64_t rb) { return Fp8BitsScaledActivations(xs, x, w, rb); },
      // |x · scale| >= 2^8 somewhere (or x not finite)
      [&](int64_t b0, int64_t b1) { GemvRowsFp8F16<kTrackNan>(y, x, w, b0, b1); },
      [&](const int64_t(&row)[kRowGroup], int n_rows, const float* const(&xs)[kRowGroup],
          bool one_block) {
        float out[kRowGroup];
        const bool saw_nan = one_block
                                 ? DotRowsFp8Bits<kTrackNan, true>(w, row, xs, prefetch, out)
                                 : DotRowsFp8Bits<kTrackNan, false>(w, row, xs, prefetch, out);
        if (saw_nan)
          for (int r = 0; r < kRowGroup; ++r) out[r] = DotRowScalar<Fp8Decoder>(w, row[r], x);
        for (int r = 0; r < n_rows; ++r) y[row[r]] = out[r];
      });
}

#endif  // HWY_TARGET != HWY_SCALAR && not AVX-512 VBMI
