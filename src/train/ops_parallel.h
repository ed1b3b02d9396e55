// Row-parallel loops for the training ops' elementwise and per-row work.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/thread_pool.h"

namespace whale {

// Calls body(begin, end) over chunks of [0, n) of at least `grain` items, on the pool's threads
// when one with several threads is given (and n spans more than one chunk), else once over
// [0, n). body must not throw and must not depend on where chunks start or end.
template <typename Body>
void ParallelRows(ThreadPool* pool, int64_t n, int64_t grain, const Body& body) {
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
