// A persistent pool of worker threads with a small ParallelFor vocabulary. One pool per process,
// passed explicitly to whoever needs threads; no thread is created after construction.
//
// A decode step issues hundreds of ParallelFor calls, each a few tens of microseconds long, so
// the fork/join must cost about a microsecond: idle workers spin (with a pause instruction) on a
// generation counter for a bounded time before they sleep on it, the job is handed over as a
// function pointer plus a context pointer (no std::function, no allocation), and chunks are
// claimed from one atomic counter, which also tolerates a descheduled vCPU.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace whale {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls body(begin, end, worker) over disjoint chunks covering [0, n), at least `grain`
  // items each (except the last). `worker` is in [0, size()) and indexes per-thread scratch.
  // Returns when every chunk is done. Not reentrant: body must not call ParallelFor. body must
  // not throw (a worker thread cannot hand an exception back).
  template <class Body>
  void ParallelFor(size_t n, size_t grain, Body&& body) {
    using Plain = std::remove_reference_t<Body>;
    Run(n, grain, &Invoke<Plain>, const_cast<void*>(static_cast<const void*>(&body)));
  }

  // How long an idle worker spins before it sleeps (microseconds). Exposed for tests.
  static constexpr int64_t kSpinMicros = 200;

 private:
  using Trampoline = void (*)(void* body, size_t begin, size_t end, int worker);
  template <class Plain>
  static void Invoke(void* body, size_t begin, size_t end, int worker) {
    (*static_cast<Plain*>(body))(begin, end, worker);
  }

  void Run(size_t n, size_t grain, Trampoline trampoline, void* body);
  void WorkerLoop(int worker);
  // Claims and runs chunks of job `generation` until none is left or a newer job replaced it.
  void RunChunks(uint32_t generation, int worker);

  int n_threads_;
  std::vector<std::thread> threads_;
  uint32_t last_generation_ = 0;  // caller thread only
  bool running_ = false;          // reentrancy check, caller thread only

  // The job, written by the caller before the generation bump that publishes it. Workers may
  // read them late (for an already finished job), hence atomics; a claim only succeeds while
  // its job is current (see RunChunks), so stale values are never used.
  std::atomic<Trampoline> trampoline_{nullptr};
  std::atomic<void*> body_{nullptr};
  std::atomic<size_t> n_{0};
  std::atomic<size_t> chunk_{0};
  std::atomic<bool> stop_{false};

  // Each counter on its own cache line: workers poll generation_ while others claim chunks.
  alignas(64) std::atomic<uint32_t> generation_{0};
  // (generation << 32) | next chunk start: a worker waking after its job ended cannot claim a
  // chunk of the next one by mistake.
  alignas(64) std::atomic<uint64_t> next_{0};
  alignas(64) std::atomic<size_t> done_chunks_{0};
  alignas(64) std::atomic<int> sleepers_{0};
};

// Calls body(begin, end) over chunks of [0, n) of at least `grain` items, on the pool's threads
// when there is a pool with several threads and n spans more than one chunk, else once over
// [0, n) on the caller's thread (no pool: the single-threaded paths share the code). body must
// not throw and must not depend on where chunks start or end.
template <typename Body>
void ParallelRanges(ThreadPool* pool, int64_t n, int64_t grain, const Body& body) {
  if (pool == nullptr || pool->size() == 1 || n <= grain) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
  pool->ParallelFor(static_cast<size_t>(n), static_cast<size_t>(grain),
                    [&](size_t begin, size_t end, int) {
                      body(static_cast<int64_t>(begin), static_cast<int64_t>(end));
                    });
}

}  // namespace whale
