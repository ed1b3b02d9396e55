// Measurements of this machine's limits, the denominators of whale's roofline ratios: how fast
// memory can be read (decode is bound by it) and how fast whale's own MatMul multiplies at a
// prefill-like shape (prefill is bound by it). Both best-of-R, with the pool's threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"
#include "util/thread_pool.h"

namespace whale {

struct ReadBandwidthOptions {
  size_t bytes = size_t{1} << 30;  // >= 8x any last-level cache of the target machines
  int repeats = 5;                 // best of
};

// Bytes per second (as GB/s = 1e9 B/s) read by pool->size() threads from one anonymous buffer,
// 2 MiB aligned with MADV_HUGEPAGE, with wide aligned loads into several independent
// accumulators, each thread claiming 8 MiB pieces from a shared counter and reading a piece as
// four streams (its quarters side by side; one stream reads ~15-25 % less). The buffer is first
// written by the same threads. pool may be nullptr (one thread).
double MeasureReadBandwidth(ThreadPool* pool, const ReadBandwidthOptions& options = {});

// XOR of every 64-byte block of [p, p + bytes), read as four streams: the four quarters side by
// side, one accumulator each (XOR has one cycle of latency, so four chains keep two loads per
// cycle in flight). The probe's loop, exposed so that benchmarks can read a kernel's own bytes the
// same way. One core reads four far-apart streams faster than one: on the 2026-12 Zen 5 VM, best
// of 5 over 1 GiB, one stream 30-32 GB/s with one thread and 59-65 with two, four streams 34-39
// and 69-80; 8 and 16 streams fell back (33-34 and 29-30 with one thread). Throws Error unless p
// is 64-byte aligned and bytes a multiple of 256.
uint64_t ReadFourStreams(const uint8_t* p, size_t bytes);

struct MatMulPeakOptions {
  int64_t tokens = 128;  // a prefill batch
  int64_t rows = 2048;   // out features (a DeepSeek-V2-Lite hidden size)
  int64_t cols = 2048;   // in features
  int repeats = 5;       // best of, after one warm-up call
};

// FLOP/s (as GFLOP/s, 2 per multiply-add) of MatMul (kernels/matmul.h) for weights of `dtype`
// (F32, BF16, F8_E4M3, or the I8 / U8 block formats with random codes) at [tokens, cols] x
// [rows, cols]^T. Throws Error for other dtypes.
double MeasureMatMulPeak(DType dtype, ThreadPool* pool, const MatMulPeakOptions& options = {});

}  // namespace whale
