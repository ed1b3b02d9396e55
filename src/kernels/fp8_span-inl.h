// How the one-token FP8 kernels (fp8_table-inl.h, fp8_bits-inl.h) walk a matrix's rows: in spans
// of 128-row scale blocks, each block with x scaled by its scales. Included by matmul_simd.cc
// inside its per-target namespace, after kRowGroup and ForSpreadRowGroups.

// Narrow rows (up to this many columns) are read in spans of several 128-row scale blocks, each of
// the four row streams block by block with its own scaled x: in one block, a stream is only a
// quarter block long (32 rows, 8-16 KiB at these widths), and each stream's start, which its
// prefetch has not reached yet, cost a good share of the time. One core, FP8 through the byte
// tables from DRAM (2026-12-02 Zen 5 VM, per-block and spanned calls alternated in one process,
// medians of 10): 1536 x 384 17.6 -> 24.8 GB/s, 2304 x 512 19.6 -> 26.7, 3072 x 256 16.3 -> 23.9,
// 32768 x 512 19.8 -> 26.0. Wider rows keep one block at a time: four blocks' x vectors no longer
// fit in L1 beside the streams (1536 x 1024 24.5 -> 22.9, 1536 x 4096 28.3 -> 14.1, 2048 x
// 1408 27.8 -> 21.2). Through the F32-bits decode on a Zen 2 core (2026-12-03) spans gained less:
// small-v3 FP8 decode 52.8, 50.4 -> 54.8, 53.0 tok/s (runs alternated).
constexpr int64_t kFp8SpanMaxCols = 512;
// At most this many bytes of scaled x per span (half of L2): 64 blocks at 512 columns.
constexpr int64_t kFp8SpanBytes = int64_t{128} << 10;

// Scale blocks per span for rows [row_begin, row_end) of `cols` columns whose scaled x takes
// `padded` floats per block.
inline int64_t Fp8SpanBlocks(int64_t cols, int64_t padded, int64_t row_begin, int64_t row_end) {
  if (cols > kFp8SpanMaxCols) return 1;
  const int64_t first_block = row_begin / kWeightScaleBlock;
  const int64_t blocks_in_range = (row_end - 1) / kWeightScaleBlock + 1 - first_block;
  return std::clamp<int64_t>(kFp8SpanBytes / (padded * int64_t{sizeof(float)}), 1, blocks_in_range);
}

// This thread's buffer for the scaled x of a span, `floats` long from a 64-byte boundary (a vector
// load across two cache lines costs two); grows only, so a decode step allocates nothing.
inline float* Fp8SpanBuffer(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats + 16)
    buffer.resize(static_cast<size_t>(floats + 16));
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) &
                                  ~uintptr_t{63});
}

// For rows [row_begin, row_end) of FP8 matrix w, span by span (Fp8SpanBlocks; `padded` floats
// of scaled x per block): scale(xs, rb) writes row block rb's scaled x to xs and says whether it
// is finite; a span with a block that is not goes to fallback(b0, b1) whole. Otherwise the
// span's row groups (ForSpreadRowGroups: four streams, whose first `prefetch_bytes` are asked
// for first) go to group(row, n_rows, xs, one_block), xs[r] the scaled x of row[r]'s block and
// one_block whether the span is one block (then all xs[r] are the same).
template <class Scale, class Fallback, class Group>
HWY_INLINE void ForFp8Spans(const WeightMatrix& w, int64_t row_begin, int64_t row_end,
                            int64_t padded, int64_t prefetch_bytes, const Scale& scale,
                            const Fallback& fallback, const Group& group) {
  const int64_t span_blocks = Fp8SpanBlocks(w.cols, padded, row_begin, row_end);
  float* const scaled = Fp8SpanBuffer(span_blocks * padded);  // [span_blocks][padded]
  for (int64_t b0 = row_begin; b0 < row_end;) {
    const int64_t rb0 = b0 / kWeightScaleBlock;
    const int64_t b1 = std::min(row_end, (rb0 + span_blocks) * kWeightScaleBlock);
    bool finite = true;
    for (int64_t rb = rb0; rb * kWeightScaleBlock < b1; ++rb)
      finite &= scale(scaled + (rb - rb0) * padded, rb);
    if (!finite) {
      fallback(b0, b1);
      b0 = b1;
      continue;
    }
    const int64_t stream_bytes = (b1 - b0) / kRowGroup * w.cols;  // ForSpreadRowGroups' streams
    PrefetchStreamStarts(static_cast<const uint8_t*>(w.data) + b0 * w.cols, stream_bytes, kRowGroup,
                         stream_bytes, prefetch_bytes);
    ForSpreadRowGroups(b0, b1, [&](const int64_t(&row)[kRowGroup], int n_rows) {
      const float* xs[kRowGroup];
      for (int r = 0; r < kRowGroup; ++r)
        xs[r] = scaled + (row[r] / kWeightScaleBlock - rb0) * padded;
      group(row, n_rows, xs, span_blocks == 1);
    });
    b0 = b1;
  }
}
