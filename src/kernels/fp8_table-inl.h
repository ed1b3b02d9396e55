// FP8 e4m3 rows of the one-token kernel decoded through byte tables (fp8_table.h), for x86
// targets with AVX-512 VBMI (Highway's AVX3_DL and later: Ice Lake, Zen 4). Included by
// matmul_simd.cc inside its per-target namespace, after SumRows4, kRowGroup and ForFp8Spans.
//
// Every e4m3 value (subnormals and NaN included) is exact in BF16, i.e. in the upper 16 bits of
// its F32. Two 128-entry tables hold those two bytes for each 7-bit magnitude; vpermt2b looks up
// 64 codes at once (it ignores the index's top bit, the sign, which is OR-ed into the high byte
// afterwards). Byte unpacks of (low, high) make the BF16 words, and word unpacks with zero the
// F32s: 8 shuffles per 64 codes and no conversion, against the F16 decode's sign-extend, shift,
// mask and F16 -> F32 convert per 16 codes. One Zen 4 core, 64 x 2048 codes in L2 (BM_MatMul):
// 23.0-23.6 against 18.3-19.1 GB/s. The values are exact, so x carries only the block scale, and
// a NaN code decodes to NaN, so there is no NaN check and no fallback.
//
// The unpacks work within 128-bit lanes: output vector q's lane L holds the codes 16L + 4q ..
// 16L + 4q + 3 of its 64-code chunk. x is stored in that order when it is scaled (each chunk's
// 4 x 4 groups of 4 columns transposed), and padded with zeros to a whole chunk, so the last,
// partial chunk runs through the same code with a masked load.

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3_DL

// xs[cols rounded up to 64] = x times the scales of FP8 row block rb, in the table decode's
// order, zero past cols. A chunk lies in one 128-column scale block; its 4 x 4 groups of 4 are
// transposed with 128-bit lane shuffles.
inline void Fp8TableScaledActivations(float* xs, const float* x, const WeightMatrix& w,
                                      int64_t rb) {
  const int64_t grid_cols = (w.cols + kWeightScaleBlock - 1) / kWeightScaleBlock;
  for (int64_t k0 = 0; k0 < w.cols; k0 += kFp8TableChunk) {
    const __m512 scale = _mm512_set1_ps(w.block_scales[rb * grid_cols + k0 / kWeightScaleBlock]);
    __m512 v[4];  // v[L]: columns 16L .. 16L + 15 of the chunk, lane-group q = columns 16L + 4q..
    for (int i = 0; i < 4; ++i) {
      const int64_t left = std::clamp<int64_t>(w.cols - k0 - 16 * i, 0, 16);
      v[i] = _mm512_mul_ps(
          _mm512_maskz_loadu_ps(_bzhi_u32(0xFFFF, static_cast<unsigned>(left)), x + k0 + 16 * i),
          scale);
    }
    // out[q] lane-group L = v[L] lane-group q: a 4 x 4 transpose of 128-bit blocks.
    const __m512 v01_lo = _mm512_shuffle_f32x4(v[0], v[1], 0x44);  // v0.q0 v0.q1 v1.q0 v1.q1
    const __m512 v01_hi = _mm512_shuffle_f32x4(v[0], v[1], 0xEE);  // v0.q2 v0.q3 v1.q2 v1.q3
    const __m512 v23_lo = _mm512_shuffle_f32x4(v[2], v[3], 0x44);
    const __m512 v23_hi = _mm512_shuffle_f32x4(v[2], v[3], 0xEE);
    _mm512_storeu_ps(xs + k0, _mm512_shuffle_f32x4(v01_lo, v23_lo, 0x88));       // q0
    _mm512_storeu_ps(xs + k0 + 16, _mm512_shuffle_f32x4(v01_lo, v23_lo, 0xDD));  // q1
    _mm512_storeu_ps(xs + k0 + 32, _mm512_shuffle_f32x4(v01_hi, v23_hi, 0x88));  // q2
    _mm512_storeu_ps(xs + k0 + 48, _mm512_shuffle_f32x4(v01_hi, v23_hi, 0xDD));  // q3
  }
}

// The 4 byte tables and the constants of the decode, loaded once per row group so that they stay
// in registers.
struct Fp8TableRegisters {
  __m512i high0, high1, low0, low1, sign, zero;
};

// A function, not default member initializers: an implicit constructor would not get the
// target's attributes, and builds without -march=native could not inline the intrinsics.
HWY_INLINE Fp8TableRegisters LoadFp8TableRegisters() {
  return {_mm512_load_si512(kFp8ByteTables.high),    _mm512_load_si512(kFp8ByteTables.high + 64),
          _mm512_load_si512(kFp8ByteTables.low),     _mm512_load_si512(kFp8ByteTables.low + 64),
          _mm512_set1_epi8(static_cast<char>(0x80)), _mm512_setzero_si512()};
}

// f32[q] = the F32 values of the 64 codes at p (the first `valid` of them; the rest read as zero),
// lane group L of f32[q] holding codes 16L + 4q .. 16L + 4q + 3.
template <bool kFull>
HWY_INLINE void Fp8TableDecode(const Fp8TableRegisters& t, const uint8_t* p, __mmask64 valid,
                               __m512 (&f32)[4]) {
  __m512i codes = kFull ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(valid, p);
  // Held in a register: GCC otherwise reloads it from memory for each of its three uses (vpermi2b
  // overwrites its index), and 512-bit loads are what this loop has least of.
  asm("" : "+v"(codes));
  // high | (codes & sign): ternary-logic truth table 0xF8 is A | (B & C).
  const __m512i high = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(t.high0, codes, t.high1),
                                                 codes, t.sign, 0xF8);
  const __m512i low = _mm512_permutex2var_epi8(t.low0, codes, t.low1);
  const __m512i words0 = _mm512_unpacklo_epi8(low, high);  // lane L: codes 16L .. 16L + 7
  const __m512i words1 = _mm512_unpackhi_epi8(low, high);  // lane L: codes 16L + 8 .. 16L + 15
  f32[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(t.zero, words0));
  f32[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(t.zero, words0));
  f32[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(t.zero, words1));
  f32[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(t.zero, words1));
}

// How far ahead of its reads each row stream asks for its lines into L2. The loop has ~15
// instructions per 64-byte line, and on its own it kept too few lines in flight (one stream, one
// core: 10-11 GB/s from DRAM without, 18-21 at 8 KiB ahead). With four streams, BM_ExpertStep
// FP8 (2 threads) read 74-77 % of plain reads' speed at 2 KiB, 74-76 at 1 KiB, 65-69 at 4 KiB
// and 60-64 at 8 KiB.
constexpr int64_t kFp8TablePrefetchBytes = 2048;

// out[r] = xs[r] · W[row[r]] for kRowGroup FP8 rows read side by side (two accumulators per row),
// each xs[r] from Fp8TableScaledActivations for its row's scale block. The rows come from
// ForSpreadRowGroups, far apart: four sequential streams, which one core reads from DRAM faster
// than the one stream of rows taken in turn (2026-12-02 Zen 5 VM, runs alternated, BM_ExpertStep
// FP8 with one thread: 72-77 % of plain reads in turn, 74-79 % side by side; BM_MatMul 7168 x
// 2048 from DRAM: 26-28 against 28-31 GB/s). In L2 (64 x 2048) both run at 38-41 GB/s.
// kOneBlock: the rows share one scale block and xs[0], whose vectors are then loaded once for the
// four (with a load per row, eight V2-Lite experts a step, BM_ExpertStep, read at 71-75 % of plain
// reads against 76-80 %).
template <bool kOneBlock>
HWY_INLINE void DotRowsFp8Table(const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                                const float* const (&xs)[kRowGroup], float (&out)[kRowGroup]) {
  const DF df;
  const int64_t cols = w.cols;
  const int64_t full = cols / kFp8TableChunk * kFp8TableChunk;
  const __mmask64 tail_mask = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(cols - full));
  const Fp8TableRegisters t = LoadFp8TableRegisters();
  const uint8_t* wr[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) wr[r] = static_cast<const uint8_t*>(w.data) + row[r] * cols;
  __m512 acc[kRowGroup][2];
  for (int r = 0; r < kRowGroup; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const auto chunk = [&](int64_t k, auto full_tag) {
    __m512 shared_x[4];
    if constexpr (kOneBlock)
      for (int i = 0; i < 4; ++i) shared_x[i] = _mm512_load_ps(xs[0] + k + 16 * i);
    for (int r = 0; r < kRowGroup; ++r) {
      __m512 f32[4];
      if constexpr (decltype(full_tag)::value) {
        _mm_prefetch(reinterpret_cast<const char*>(wr[r] + k + kFp8TablePrefetchBytes),
                     _MM_HINT_T1);
        Fp8TableDecode<true>(t, wr[r] + k, ~__mmask64{0}, f32);
      } else {
        Fp8TableDecode<false>(t, wr[r] + k, tail_mask, f32);
      }
      __m512 x[4];
      for (int i = 0; i < 4; ++i)
        x[i] = kOneBlock ? shared_x[i] : _mm512_load_ps(xs[r] + k + 16 * i);
      acc[r][0] = _mm512_fmadd_ps(f32[0], x[0], acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(f32[1], x[1], acc[r][1]);
      acc[r][0] = _mm512_fmadd_ps(f32[2], x[2], acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(f32[3], x[3], acc[r][1]);
    }
  };
  for (int64_t k = 0; k < full; k += kFp8TableChunk) chunk(k, std::true_type());
  if (full < cols) chunk(full, std::false_type());
  VF total[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) total[r].raw = _mm512_add_ps(acc[r][0], acc[r][1]);
  SumRows4(df, total, out);
}

// y[row] = x · W[row] for one token, FP8 rows [row_begin, row_end), one 128-row scale block at a
// time, or for narrow rows a span of several (Fp8SpanBlocks).
inline void GemvRowsFp8Table(float* y, const float* x, const WeightMatrix& w, int64_t row_begin,
                             int64_t row_end) {
  const int64_t padded = (w.cols + kFp8TableChunk - 1) / kFp8TableChunk * kFp8TableChunk;
  ForFp8Spans(
      w, row_begin, row_end, padded, kFp8TablePrefetchBytes,
      [&](float* xs, int64_t rb) {
        Fp8TableScaledActivations(xs, x, w, rb);
        return true;  // the table decode needs no scaling that could overflow
      },
      [](int64_t, int64_t) {},
      [&](const int64_t(&row)[kRowGroup], int n_rows, const float* const(&xs)[kRowGroup],
          bool one_block) {
        float out[kRowGroup];
        if (one_block)
          DotRowsFp8Table<true>(w, row, xs, out);
        else
          DotRowsFp8Table<false>(w, row, xs, out);
        for (int r = 0; r < n_rows; ++r) y[row[r]] = out[r];
      });
}

#endif  // HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3_DL
