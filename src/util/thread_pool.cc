#include "util/thread_pool.h"

#include <algorithm>

#include "util/error.h"

namespace whale {

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int w = 1; w < n_threads_; ++w) threads_.emplace_back([this, w] { WorkerLoop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::RunChunks(int worker) {
  for (;;) {
    const size_t begin = next_chunk_.fetch_add(chunk_, std::memory_order_relaxed);
    if (begin >= n_) return;
    (*body_)(begin, std::min(n_, begin + chunk_), worker);
  }
}

void ThreadPool::WorkerLoop(int worker) {
  unsigned seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    RunChunks(worker);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_workers_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::ParallelFor(size_t n, size_t grain,
                             const std::function<void(size_t, size_t, int)>& body) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  // Few chunks per thread keeps the split even without much contention on the counter.
  const size_t target_chunks = static_cast<size_t>(n_threads_) * 4;
  const size_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  if (n_threads_ == 1 || chunk >= n) {
    body(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    WHALE_ASSERT(body_ == nullptr, "ParallelFor is not reentrant");
    body_ = &body;
    n_ = n;
    chunk_ = chunk;
    next_chunk_.store(0, std::memory_order_relaxed);
    pending_workers_ = n_threads_ - 1;
    ++generation_;
  }
  wake_.notify_all();
  RunChunks(0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_workers_ == 0; });
  body_ = nullptr;
}

}  // namespace whale
