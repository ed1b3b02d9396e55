// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit mixing function whose output is the same on every
// platform and standard library. Used as a counter-based generator (seeds, per-name streams,
// shard windows) wherever results must be reproducible bit for bit.
#pragma once

#include <cstdint>

namespace whale {

// The mix of counter value x (the generator's output for state x before its increment).
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Advances `state` by one step and returns its output: the sequential generator.
inline uint64_t SplitMix64Next(uint64_t& state) {
  const uint64_t out = SplitMix64(state);
  state += 0x9E3779B97F4A7C15ULL;
  return out;
}

}  // namespace whale
