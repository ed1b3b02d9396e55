// FP8 e4m3 rows of the one-token kernel decoded through byte tables (fp8_table.h), for x86
// targets with AVX-512 VBMI (Highway's AVX3_DL and later: Ice Lake, Zen 4). Included by
// matmul_simd.cc inside its per-target namespace, after SumRows4 and kRowGroup.
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

// The 64 codes at p (the first `valid` of them; the rest read as zero) times xs's 64 values,
// added into the 4 accumulators.
template <bool kFull>
HWY_INLINE void Fp8TableChunk(const uint8_t* p, __mmask64 valid, const float* xs,
                              __m512 (&acc)[4]) {
  const __m512i high0 = _mm512_load_si512(kFp8ByteTables.high);
  const __m512i high1 = _mm512_load_si512(kFp8ByteTables.high + 64);
  const __m512i low0 = _mm512_load_si512(kFp8ByteTables.low);
  const __m512i low1 = _mm512_load_si512(kFp8ByteTables.low + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i zero = _mm512_setzero_si512();
  __m512i codes = kFull ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(valid, p);
  // Held in a register: GCC otherwise reloads it from memory for each of its three uses (vpermi2b
  // overwrites its index), and 512-bit loads are what this loop has least of.
  asm("" : "+v"(codes));
  // high | (codes & sign): ternary-logic truth table 0xF8 is A | (B & C).
  const __m512i high =
      _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(high0, codes, high1), codes, sign, 0xF8);
  const __m512i low = _mm512_permutex2var_epi8(low0, codes, low1);
  const __m512i words0 = _mm512_unpacklo_epi8(low, high);  // lane L: codes 16L .. 16L + 7
  const __m512i words1 = _mm512_unpackhi_epi8(low, high);  // lane L: codes 16L + 8 .. 16L + 15
  const __m512i f32[4] = {_mm512_unpacklo_epi16(zero, words0), _mm512_unpackhi_epi16(zero, words0),
                          _mm512_unpacklo_epi16(zero, words1), _mm512_unpackhi_epi16(zero, words1)};
  for (int q = 0; q < 4; ++q)
    acc[q] = _mm512_fmadd_ps(_mm512_castsi512_ps(f32[q]), _mm512_load_ps(xs + 16 * q), acc[q]);
}

// The loop has ~18 instructions per 64-byte line, and on its own it kept too few lines in flight:
// one core streamed 10-11 GB/s from DRAM against 16-17 for the F16 decode (7168 x 2048,
// BM_MatMul). Prefetching into L2 this far ahead took it to 18-21 (into L1 at 1-2 KiB: no gain;
// 4 and 16 KiB about as good as 8). A prefetch past the matrix's end never faults.
constexpr int64_t kFp8TablePrefetchBytes = 8192;

// out[r] = xs · W[row[r]] for kRowGroup FP8 rows, one after another (one sequential stream), xs
// from Fp8TableScaledActivations.
HWY_INLINE void DotRowsFp8Table(const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                                const float* xs, float (&out)[kRowGroup]) {
  const DF df;
  const int64_t cols = w.cols;
  const int64_t full = cols / kFp8TableChunk * kFp8TableChunk;
  const __mmask64 tail_mask = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(cols - full));
  VF total[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) {
    const uint8_t* wr = static_cast<const uint8_t*>(w.data) + row[r] * cols;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t k = 0; k < full; k += kFp8TableChunk) {
      _mm_prefetch(reinterpret_cast<const char*>(wr + k + kFp8TablePrefetchBytes), _MM_HINT_T1);
      Fp8TableChunk<true>(wr + k, ~__mmask64{0}, xs + k, acc);
    }
    if (full < cols) Fp8TableChunk<false>(wr + full, tail_mask, xs + full, acc);
    total[r].raw = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
  }
  SumRows4(df, total, out);
}

// y[row] = x · W[row] for one token, FP8 rows [row_begin, row_end), one 128-row scale block at a
// time.
inline void GemvRowsFp8Table(float* y, const float* x, const WeightMatrix& w, int64_t row_begin,
                             int64_t row_end) {
  // [cols rounded up to 64] from a 64-byte boundary (a vector load across two cache lines costs
  // two), grows only.
  thread_local std::vector<float> buffer;
  const int64_t padded = (w.cols + kFp8TableChunk - 1) / kFp8TableChunk * kFp8TableChunk;
  if (static_cast<int64_t>(buffer.size()) < padded + 16)
    buffer.resize(static_cast<size_t>(padded + 16));
  float* const scaled =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
  for (int64_t b0 = row_begin; b0 < row_end;) {
    const int64_t rb = b0 / kWeightScaleBlock;
    const int64_t b1 = std::min(row_end, (rb + 1) * kWeightScaleBlock);
    Fp8TableScaledActivations(scaled, x, w, rb);
    for (int64_t r0 = b0; r0 < b1; r0 += kRowGroup) {
      const int n_rows = static_cast<int>(std::min<int64_t>(kRowGroup, b1 - r0));
      int64_t row[kRowGroup];
      GroupRows(r0, n_rows, row);
      float out[kRowGroup];
      DotRowsFp8Table(w, row, scaled, out);
      for (int r = 0; r < n_rows; ++r) y[r0 + r] = out[r];
    }
    b0 = b1;
  }
}

#endif  // HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3_DL
