// The first lines of the weight streams a one-token kernel reads side by side, asked for into L2
// when the kernel starts.
#pragma once

#include <algorithm>
#include <cstdint>

namespace whale {

// The one-token kernels (int8 / int4, FP8 tables, BF16 pairs) read a matrix as a few sequential
// streams and, while reading line k of a stream, ask for line k + `ahead` bytes (prefetcht1).
// Nothing asks for a stream's first `ahead` bytes before the loop reaches them: each stream starts
// on demand misses alone while the hardware prefetcher learns it, and small-v3's matrices (0.3-1.2
// MB, streams of 75-300 KB) start ~200 times a token. This asks for those bytes, `streams` streams
// `stride` bytes apart from `first`, each at most `length` bytes long, before the loop begins.
// small-v3 decode, steps with and without chosen at random in one process (600 steps, medians,
// 2026-12-03): int8 13.28 -> 13.10 and 13.03 -> 13.05 ms a token with 1 thread, 9.44 -> 9.25 and
// 8.53 -> 8.44 with 2; int4 8.14 -> 8.00 and 8.62 -> 8.42, 5.87 -> 5.82 and 5.28 -> 5.20; FP8
// 14.62 -> 14.52 and 10.04 -> 9.90; BF16 20.65 -> 20.60 and 13.04 -> 12.88. Asking for 4 KiB per
// stream gained no more than 2 KiB.
inline void PrefetchStreamStarts(const void* first, int64_t stride, int streams, int64_t length,
                                 int64_t ahead) {
  const int64_t bytes = std::min(ahead, length);
  for (int s = 0; s < streams; ++s) {
    const char* start = static_cast<const char*>(first) + s * stride;
    // (address, read, locality 2): prefetcht1 on x86, into L2 as the kernels' own prefetches.
    for (int64_t line = 0; line < bytes; line += 64) __builtin_prefetch(start + line, 0, 2);
  }
}

}  // namespace whale
