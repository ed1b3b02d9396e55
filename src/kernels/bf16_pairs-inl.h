// BF16 rows of the one-token kernel through vdpbf16ps, for x86 AVX-512 targets on CPUs with
// AVX512_BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids). Highway 1.0.3 has no target for
// it, so the CPU is asked at run time (Bf16PairsAvailable) and the instruction is written in
// inline assembly. Included by matmul_simd.cc inside its per-target namespace, after SumRows4,
// kRowGroup and ForSpreadRowGroups.
//
// vdpbf16ps multiplies each 32-bit lane's two BF16 values by another lane's two, exactly in F32
// (8-bit by 8-bit significands), and adds both products into the F32 lane: the weights need no
// decode at all. x is split once per call into two BF16 vectors, x = hi + lo + r: hi rounds x to
// BF16's 8 significant bits (|x - hi| <= 2^-8 |x|) and lo rounds the rest (|r| <= 2^-8 |x - hi|
// <= 2^-16 |x|). Each weight pair meets both, two instructions per 32 weights, where the F32
// decode takes a shift, a mask, two FMAs and x's two dot-order permutes. Accuracy: each product
// errs by at most 2^-16 |x w| beyond F32's rounding, 256 times below the 2^-8 a BF16 weight
// already carries; the instruction treats BF16 subnormal weights (|w| < 2^-126) as zero and
// flushes subnormal sums, ~1e-38 absolute. Non-finite x give what F32 gives: lo is 0 where x - hi
// is not finite, and a finite x that rounds to infinity is truncated instead.
//
// Measured on the 2026-12 Zen 5 VM, one core, MatMul of one token, F32 decode -> pairs, runs
// alternated: from DRAM (512 MiB of copies) 7168 x 2048 23-26 -> 30-34 GB/s, 384 x 1536 25-30 ->
// 29-36, 1536 x 384 25-31 -> 28-29; in cache (512 x 1024) 64-69 -> 72-74. small-v3 BF16 decode
// 41-44 -> 57-60 tok/s with 1 thread, 81-85 -> 99-108 with 2. The same instruction did not pay
// for FP8 (fp8_table-inl.h's BF16 words fed straight to it: 19-23 against 20-25 GB/s from DRAM;
// with 8 accumulators ~40 against 38-40 in L1): FP8's one-token loop held at ~40-46 GB/s in L1
// whatever its decode (tables, shifts and masks, or this instruction), so there was no decode
// work left for it to save.

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3

// Whether this CPU runs vdpbf16ps (asked once) and tests have not turned the path off
// (DisableBf16Pairs in kernels/simd.h).
inline bool Bf16PairsAvailable() {
  static const bool cpu_has_it = __builtin_cpu_supports("avx512bf16");
  return cpu_has_it && !g_bf16_pairs_disabled.load(std::memory_order_relaxed);
}

// acc + Σ over each lane's pair of w's BF16 times x's BF16 (vdpbf16ps; EVEX-only, so no
// encoding to pin).
HWY_INLINE __m512 DotBf16Pairs(__m512 acc, __m512i w, __m512i x) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(w), "v"(x));
  return acc;
}

// The upper 16 bits of each lane's F32 rounded to nearest even as BF16 (low 16 bits cleared).
// NaN stays NaN (quiet), and a finite value that would round to infinity is truncated to the
// largest finite BF16 instead.
HWY_INLINE __m512i RoundToBf16(__m512i bits) {
  const __m512i upper = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
  const __m512i infinity = _mm512_set1_epi32(0x7F800000);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_and_si512(
      _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), upper);
  const __mmask16 finite = _mm512_cmplt_epi32_mask(magnitude, infinity);
  const __mmask16 overflowed =
      finite &
      _mm512_cmpeq_epi32_mask(_mm512_and_si512(rounded, _mm512_set1_epi32(0x7FFFFFFF)), infinity);
  rounded = _mm512_mask_and_epi32(rounded, overflowed, bits, upper);
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(magnitude, infinity);
  return _mm512_mask_and_epi32(rounded, nan, _mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)),
                               upper);
}

// 16 values of x as (hi, lo) F32 bit patterns whose upper halves are the BF16 split above.
HWY_INLINE void SplitToBf16(__m512 v, __m512i& hi, __m512i& lo) {
  hi = RoundToBf16(_mm512_castps_si512(v));
  const __m512 rest = _mm512_sub_ps(v, _mm512_castsi512_ps(hi));
  const __mmask16 finite =
      _mm512_cmp_ps_mask(rest, rest, _CMP_ORD_Q) &
      _mm512_cmp_ps_mask(_mm512_abs_ps(rest),
                         _mm512_set1_ps(std::numeric_limits<float>::infinity()), _CMP_LT_OQ);
  lo = _mm512_maskz_mov_epi32(finite, RoundToBf16(_mm512_castps_si512(rest)));
}

// hi[k], lo[k] for k < cols rounded up to 32: x's BF16 split, zero past cols, in the order of the
// weights (a lane's pair is two consecutive columns).
inline void SplitActivations(uint16_t* hi, uint16_t* lo, const float* x, int64_t cols) {
  for (int64_t k = 0; k < cols; k += 32) {
    __m512i h[2], l[2];
    for (int i = 0; i < 2; ++i) {
      const int64_t left = std::clamp<int64_t>(cols - k - 16 * i, 0, 16);
      SplitToBf16(
          _mm512_maskz_loadu_ps(_bzhi_u32(0xFFFF, static_cast<unsigned>(left)), x + k + 16 * i),
          h[i], l[i]);
    }
    // The upper halves of two 16-lane vectors as 32 BF16 in order: a word permute across both.
    const __m512i odd_words =
        _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27,
                         25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    _mm512_storeu_si512(hi + k, _mm512_permutex2var_epi16(h[0], odd_words, h[1]));
    _mm512_storeu_si512(lo + k, _mm512_permutex2var_epi16(l[0], odd_words, l[1]));
  }
}

// How far ahead of its reads each row stream asks for lines into L2 (prefetcht1) where the CPU
// gains from it (RunningStreamPrefetch, kernels/stream_prefetch.h); a stream runs on into its next
// row, which it reads next. small-v3 BF16 decode on the Zen 5 VM, steps alternated at random in one
// run: 2 threads 12.0 -> 11.2 ms a token, 1 thread 20.5 -> 19.3 (1 KiB: 0-4 % slower than 2, 4 KiB
// 6 % slower). A prefetch past the matrix's end never faults.
constexpr int64_t kBf16PrefetchBytes = 2048;

// out[r] = x · W[row[r]] for kRowGroup BF16 rows side by side (each x load shared by the 4), x
// from SplitActivations; the last, partial chunk of 32 columns through a masked load.
HWY_INLINE void DotRowsBf16Pairs(const WeightMatrix& w, const int64_t (&row)[kRowGroup],
                                 const uint16_t* hi, const uint16_t* lo, bool prefetch,
                                 float (&out)[kRowGroup]) {
  const int64_t cols = w.cols;
  const int64_t full = cols / 32 * 32;
  const uint16_t* wr[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) wr[r] = static_cast<const uint16_t*>(w.data) + row[r] * cols;
  __m512 acc_hi[kRowGroup], acc_lo[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) acc_hi[r] = acc_lo[r] = _mm512_setzero_ps();
  const auto chunk = [&](int64_t k, __mmask32 valid, auto full_tag) {
    const __m512i xh = _mm512_loadu_si512(hi + k), xl = _mm512_loadu_si512(lo + k);
    for (int r = 0; r < kRowGroup; ++r) {
      if (prefetch)
        _mm_prefetch(reinterpret_cast<const char*>(wr[r] + k) + kBf16PrefetchBytes, _MM_HINT_T1);
      const __m512i wv = decltype(full_tag)::value ? _mm512_loadu_si512(wr[r] + k)
                                                   : _mm512_maskz_loadu_epi16(valid, wr[r] + k);
      acc_hi[r] = DotBf16Pairs(acc_hi[r], wv, xh);
      acc_lo[r] = DotBf16Pairs(acc_lo[r], wv, xl);
    }
  };
  for (int64_t k = 0; k < full; k += 32) chunk(k, ~__mmask32{0}, std::true_type());
  if (full < cols)
    chunk(full, _bzhi_u32(~0u, static_cast<unsigned>(cols - full)), std::false_type());
  VF total[kRowGroup];
  for (int r = 0; r < kRowGroup; ++r) total[r].raw = _mm512_add_ps(acc_hi[r], acc_lo[r]);
  SumRows4(DF(), total, out);
}

// y[row] = x · W[row] for one token, BF16 rows [row_begin, row_end) read side by side in four
// far-apart streams (ForSpreadRowGroups).
inline void GemvRowsBf16Pairs(float* y, const float* x, const WeightMatrix& w, int64_t row_begin,
                              int64_t row_end) {
  // hi then lo, [cols rounded up to 32] each, from a 64-byte boundary; grows only.
  thread_local std::vector<uint16_t> buffer;
  const int64_t padded = (w.cols + 31) / 32 * 32;
  if (static_cast<int64_t>(buffer.size()) < 2 * padded + 32)
    buffer.resize(static_cast<size_t>(2 * padded + 32));
  uint16_t* const hi = reinterpret_cast<uint16_t*>(
      (reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
  uint16_t* const lo = hi + padded;
  SplitActivations(hi, lo, x, w.cols);
  const bool prefetch = RunningStreamPrefetch();
  const int64_t stream_bytes = (row_end - row_begin) / kRowGroup * w.cols * 2;  // BF16
  PrefetchStreamStarts(static_cast<const uint16_t*>(w.data) + row_begin * w.cols, stream_bytes,
                       kRowGroup, stream_bytes, kBf16PrefetchBytes);
  ForSpreadRowGroups(row_begin, row_end, [&](const int64_t(&row)[kRowGroup], int n_rows) {
    float out[kRowGroup];
    DotRowsBf16Pairs(w, row, hi, lo, prefetch, out);
    for (int r = 0; r < n_rows; ++r) y[row[r]] = out[r];
  });
}

#endif  // HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
