// Software prefetch of the weight streams the one-token kernels read side by side: the first lines
// of each stream when a kernel starts, and whether the kernels prefetch ahead as they read.
#pragma once

#include <algorithm>
#include <cstdint>

namespace whale {

// The one-token kernels (int8 / int4, FP8 tables, BF16 pairs) read a matrix as a few sequential
// streams and, while reading line k of a stream, may ask for line k + `ahead` bytes (prefetcht1;
// RunningStreamPrefetch below). Nothing asks for a stream's first `ahead` bytes before the loop
// reaches them: each stream starts on demand misses alone while the hardware prefetcher learns it,
// and small-v3's matrices (0.3-1.2 MB, streams of 75-300 KB) start ~200 times a token. This asks
// for those bytes, `streams` streams `stride` bytes apart from `first`, each at most `length` bytes
// long, before the loop begins. small-v3 decode with the running prefetch on, steps with and
// without this chosen at random in one process (600 steps, medians, 2026-12-03, Zen 4): int8 13.28
// -> 13.10 and 13.03 -> 13.05 ms a token with 1 thread, 9.44 -> 9.25 and 8.53 -> 8.44 with 2; int4
// 8.14 -> 8.00 and 8.62 -> 8.42, 5.87 -> 5.82 and 5.28 -> 5.20; FP8 14.62 -> 14.52 and 10.04 ->
// 9.90; BF16 20.65 -> 20.60 and 13.04 -> 12.88. 4 KiB per stream gained no more than 2 KiB. With
// the running prefetch off it made no difference either way (within 1 %).
inline void PrefetchStreamStarts(const void* first, int64_t stride, int streams, int64_t length,
                                 int64_t ahead) {
  const int64_t bytes = std::min(ahead, length);
  for (int s = 0; s < streams; ++s) {
    const char* start = static_cast<const char*>(first) + s * stride;
    // (address, read, locality 2): prefetcht1 on x86, into L2 as the kernels' own prefetches.
    for (int64_t line = 0; line < bytes; line += 64) __builtin_prefetch(start + line, 0, 2);
  }
}

// Whether the one-token int8 / int4, BF16 and FP8 F32-bits kernels prefetch ahead of their reads
// as they go (FP8's table kernel always does). It pays on one CPU and costs on another, measured
// with the same kernels and models, steps with and without at random in one process (Zen 2: whole
// runs alternated):
// - Zen 5 VM, 2026-12-02: on. V2-Lite decode int8 93.9 -> 90.1 ms a token with 1 thread and 65.7
//   -> 61.8 with 2; int4 53.9 -> 50.7 and 34.7 -> 32.5; small-v3 BF16 20.5 -> 19.3 and 12.0 ->
//   11.2.
// - Zen 4 (Genoa) VM, 2026-12-03: off. With 1 thread, small-v3 int8 12.25 -> 10.23, 11.99 ->
//   9.95, 11.31 -> 9.13, 12.87 -> 12.24 ms a token; int4 7.90 -> 7.15, 7.67 -> 6.76, 7.99 -> 7.21,
//   7.63 -> 6.70; BF16 21.22 -> 19.93, 20.95 -> 18.76, 20.41 -> 19.07, 21.26 -> 19.36; V2-Lite int8
//   125.8 -> 107.0. With 2 threads within the noise either way: small-v3 int8 7.90 -> 7.61, 8.29
//   -> 8.23, 8.32 -> 8.36, 8.12 -> 8.78; int4 5.47 -> 5.76, 5.90 -> 5.80, 5.55 -> 5.62, 5.27 ->
//   5.26; BF16 13.73 -> 13.79, 14.85 -> 14.68, 15.45 -> 15.76, 14.94 -> 14.49; V2-Lite int8 90.1
//   -> 87.2. One int8 kernel over 1 GiB of copies of one matrix, one core, against plain reads of
//   the same bytes (runs alternated): 76-81 % of their speed with the running prefetch, 96-107 %
//   without, from 384 x 1536 to 16384 x 2048. FP8's kernel, off: 1 thread 14.53 -> 14.69, 2
//   threads 9.42 -> 10.16, so it keeps its prefetch everywhere.
// - Zen 2 VM (family 17h, AVX2), 2026-12-03, whole bench runs alternated (whale bench -p 16 -n 32
//   --repeat 3 --warmup 60): V2-Lite int8 with 1 thread 6.92, 7.03 -> 8.05, 8.15 tok/s (71-72 ->
//   82-83 % of the probe), with 2 threads 10.35, 10.30 -> 10.67 (80-81 -> 82 %); int4 with 1
//   thread 13.60, 13.20 -> 13.01, 12.71 (76-79 % either way); small-v3 int8 and int4 79-80 ->
//   82-86 % and 73-80 -> 75-82 % (one outlier); BF16 and FP8 (F32 bits) within the noise.
// So it is off on AMD families 17h (Zen, Zen 2) and 19h (Zen 3, Zen 4; Zen 3 unmeasured) and on
// elsewhere; WHALE_STREAM_PREFETCH=on|off overrides the CPU's default. Asked once per process; a
// bad value of the variable is an error at the first matrix product.
bool RunningStreamPrefetch();
// The rule behind it: `setting` is the variable's value (nullptr or "" when unset), `cpu_default`
// the CPU's default (RunningStreamPrefetchCpuDefault). Throws Error for any other value.
bool RunningStreamPrefetchSetting(const char* setting, bool cpu_default);
// false on AMD families 17h and 19h, true elsewhere.
bool RunningStreamPrefetchCpuDefault();

}  // namespace whale
