#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace whale {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `done` with a pause between reads; checks the clock only every 64 polls (a clock read
// costs tens of nanoseconds). Returns false when `micros` passed without `done` turning true.
template <class Done>
bool SpinFor(int64_t micros, const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int w = 1; w < n_threads_; ++w) threads_.emplace_back([this, w] { WorkerLoop(w); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::RunChunks(uint32_t generation, int worker) {
  for (;;) {
    // Acquire loads: a field value written for a newer job makes the next_ load below see at
    // least that job's closing store, so the generation check rejects the mixed read.
    const Trampoline trampoline = trampoline_.load(std::memory_order_acquire);
    void* const body = body_.load(std::memory_order_acquire);
    const size_t n = n_.load(std::memory_order_acquire);
    const size_t chunk = chunk_.load(std::memory_order_acquire);
    uint64_t claim = next_.load(std::memory_order_acquire);
    size_t begin = 0;
    for (;;) {
      // A successful claim proves the job was still running, so the values read above (before
      // the claim, after its publication) belong to it.
      if (static_cast<uint32_t>(claim >> 32) != generation) return;
      begin = static_cast<size_t>(claim & 0xFFFFFFFFu);
      if (begin >= n) return;
      if (next_.compare_exchange_weak(claim, claim + chunk, std::memory_order_acq_rel)) break;
    }
    trampoline(body, begin, std::min(n, begin + chunk), worker);
    done_chunks_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::WorkerLoop(int worker) {
  uint32_t seen = 0;
  for (;;) {
    const auto published = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!SpinFor(kSpinMicros, published)) {
      // Sleep. seq_cst on both sides: either the caller sees sleepers_ > 0 and notifies, or
      // wait() sees the new generation and returns at once.
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      generation_.wait(seen, std::memory_order_seq_cst);
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      if (!published()) continue;
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    RunChunks(seen, worker);
  }
}

void ThreadPool::Run(size_t n, size_t grain, Trampoline trampoline, void* body) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  // Few chunks per thread keeps the split even without much contention on the counter.
  const size_t target_chunks = static_cast<size_t>(n_threads_) * 4;
  const size_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  if (n_threads_ == 1 || chunk >= n) {
    trampoline(body, 0, n, 0);
    return;
  }
  WHALE_ASSERT(n < (size_t{1} << 31), "ParallelFor over ", n, " items (at most 2^31)");
  WHALE_ASSERT(!running_, "ParallelFor is not reentrant");
  running_ = true;
  const uint32_t generation = ++last_generation_;
  const size_t n_chunks = (n + chunk - 1) / chunk;
  // Close the counter under the new generation before touching the job's fields: a worker late
  // from the previous job that reads a mix of old and new fields then fails its claim instead of
  // running a chunk of the new job with the old body (or counting a chunk twice).
  next_.store((static_cast<uint64_t>(generation) << 32) | 0xFFFFFFFFu, std::memory_order_seq_cst);
  trampoline_.store(trampoline, std::memory_order_release);
  body_.store(body, std::memory_order_release);
  n_.store(n, std::memory_order_release);
  chunk_.store(chunk, std::memory_order_release);
  done_chunks_.store(0, std::memory_order_relaxed);
  next_.store(static_cast<uint64_t>(generation) << 32, std::memory_order_release);
  generation_.store(generation, std::memory_order_seq_cst);  // publishes the job (release)
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  // The caller claims chunks too, so a job finishes even while no worker is scheduled.
  RunChunks(generation, 0);
  const auto done = [&] { return done_chunks_.load(std::memory_order_acquire) == n_chunks; };
  while (!SpinFor(kSpinMicros, done)) std::this_thread::yield();
  running_ = false;
}

}  // namespace whale
