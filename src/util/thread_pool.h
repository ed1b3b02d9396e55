// A persistent pool of worker threads with a small ParallelFor vocabulary. One pool per process,
// passed explicitly to whoever needs threads; no thread is created after construction.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
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
  // Returns when every chunk is done. Not reentrant: body must not call ParallelFor.
  void ParallelFor(size_t n, size_t grain,
                   const std::function<void(size_t begin, size_t end, int worker)>& body);

 private:
  void WorkerLoop(int worker);
  void RunChunks(int worker);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // The job being run: set under mutex_ before a generation bump.
  const std::function<void(size_t, size_t, int)>* body_ = nullptr;
  size_t n_ = 0;
  size_t chunk_ = 0;
  std::atomic<size_t> next_chunk_{0};
  int pending_workers_ = 0;
  unsigned generation_ = 0;
  bool stop_ = false;
};

}  // namespace whale
