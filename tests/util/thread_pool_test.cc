#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

namespace whale {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 7u, 31u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> max_worker{0};
      pool.ParallelFor(n, 3, [&](size_t begin, size_t end, int worker) {
        for (size_t i = begin; i < end; ++i) hits[i]++;
        int seen = max_worker.load();
        while (worker > seen && !max_worker.compare_exchange_weak(seen, worker)) {
        }
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
      EXPECT_LT(max_worker.load(), threads);
    }
  }
}

TEST(ThreadPool, ManyRoundsInARow) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int round = 0; round < 2000; ++round)
    pool.ParallelFor(64, 1, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) sum += static_cast<long>(i);
    });
  EXPECT_EQ(sum.load(), 2000L * (63 * 64 / 2));
}

// Workers that slept (idle longer than the spin window) must wake for the next job.
TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(3 * ThreadPool::kSpinMicros));
    std::vector<std::atomic<int>> hits(100);
    pool.ParallelFor(100, 1, [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "round " << round;
  }
}

// Alternating job sizes and bodies in quick succession: a worker that wakes late for one job
// must never run a chunk of the next one with the old body (each body checks its own tag).
TEST(ThreadPool, LateWorkersNeverMixJobs) {
  ThreadPool pool(4);
  for (int round = 0; round < 3000; ++round) {
    const size_t n = 1 + static_cast<size_t>(round % 37);
    std::vector<int> owner(n, -1);
    std::atomic<int> wrong{0};
    pool.ParallelFor(n, 1, [&, round](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) {
        if (i >= owner.size() || owner[i] != -1)
          wrong++;
        else
          owner[i] = round;
      }
    });
    ASSERT_EQ(wrong.load(), 0) << "round " << round;
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(owner[i], round) << "round " << round << " i " << i;
  }
}

// Bodies of any callable type, including one too large for std::function's inline storage and
// a std::function itself, are run without copies.
TEST(ThreadPool, AcceptsAnyCallable) {
  ThreadPool pool(2);
  std::array<int64_t, 16> big{};
  std::atomic<int64_t> sum{0};
  pool.ParallelFor(1000, 1, [&, big](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) sum += static_cast<int64_t>(i) + big[i % 16];
  });
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  std::atomic<int64_t> count{0};
  const std::function<void(size_t, size_t, int)> f = [&](size_t b, size_t e, int) {
    count += static_cast<int64_t>(e - b);
  };
  pool.ParallelFor(777, 5, f);
  EXPECT_EQ(count.load(), 777);
}

TEST(ThreadPool, RespectsGrain) {
  ThreadPool pool(2);
  std::atomic<int> short_chunks{0};
  pool.ParallelFor(100, 30, [&](size_t b, size_t e, int) {
    if (e - b < 30 && e != 100) short_chunks++;
  });
  EXPECT_EQ(short_chunks.load(), 0);
}

}  // namespace
}  // namespace whale
