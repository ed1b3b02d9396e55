// Branch-free F32 exponential for the training ops' softmax loops (so that they vectorize).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace whale {

// e^x for x <= 88 (softmax arguments are <= 0), within 2 ulps of the exact value for
// x >= −87.3; below that (−inf included) it returns 0 (the exact value is below 2⁻¹²⁶ there).
// e^x = 2ⁿ·e^r with n = round(x·log2 e) and r = x − n·ln 2 (ln 2 split in two parts so that
// n·ln2_hi is exact), e^r from the degree-7 Taylor-like minimax polynomial of Cephes' expf.
inline float FastExp(float x) {
  const bool underflow = x < -87.3f;
  const float clamped = underflow ? -87.3f : x;
  // Adding and subtracting 1.5·2²³ rounds to an integer (ties to even) for |t| < 2²².
  const float n = (clamped * 1.44269504088896341f + 0x1.8p23f) - 0x1.8p23f;
  float r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float two_n =
      std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  return underflow ? 0.0f : er * two_n;
}

// Σ x[i] in F32 with 16 partial sums (lane i % 16), added pairwise at the end: a fixed order
// (so results never depend on threads) that the compiler can keep in vector registers.
inline float SumF32(const float* x, int64_t n) {
  float lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += x[i + l];
  for (int l = 0; i < n; ++i, ++l) lanes[l] += x[i];
  for (int width = 8; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

// max x[i] (−inf for n == 0; NaN entries are ignored), with 16 partial maxima as SumF32.
inline float MaxF32(const float* x, int64_t n) {
  float lanes[16];
  for (float& l : lanes) l = -INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] = x[i + l] > lanes[l] ? x[i + l] : lanes[l];
  for (int l = 0; i < n; ++i, ++l) lanes[l] = x[i] > lanes[l] ? x[i] : lanes[l];
  float max = lanes[0];
  for (int l = 1; l < 16; ++l) max = lanes[l] > max ? lanes[l] : max;
  return max;
}

}  // namespace whale
