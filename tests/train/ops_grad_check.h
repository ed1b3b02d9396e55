// Finite-difference gradient checks for the training ops tests (double precision).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace whale {

// Central differences with step kFdStep in double: the truncation error is about
// h²·|f'''|/6 ≈ 2e-11 for the O(1) third derivatives of these ops on O(1) inputs, and the
// rounding error about 2⁻⁵³·|L|/h ≈ 1e-11·|L|; the ops' own rounding in double is ~1e-15
// relative. kFdTolerance (relative to 1 + |gradient|) leaves a margin of ~1000 over both, yet any
// wrong term of a gradient (a factor, a sign, a missing path) is caught: those are O(|gradient|).
inline constexpr double kFdStep = 1e-5;
inline constexpr double kFdTolerance = 1e-7;

inline std::vector<double> RandomDoubles(int64_t n, std::mt19937& rng, double lo = -1.0,
                                         double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

// Σ_i r_i · y_i: the scalar whose gradient with respect to y is r (random projection).
inline double Project(std::span<const double> y, std::span<const double> r) {
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) sum += y[i] * r[i];
  return sum;
}

// Compares grad[i] with (loss(x + h·e_i) − loss(x − h·e_i)) / 2h for every i. loss reads x.
inline void ExpectGradient(std::vector<double>& x, std::span<const double> grad,
                           const std::function<double()>& loss, const std::string& name,
                           double tolerance = kFdTolerance) {
  ASSERT_EQ(x.size(), grad.size()) << name;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + kFdStep;
    const double plus = loss();
    x[i] = saved - kFdStep;
    const double minus = loss();
    x[i] = saved;
    const double fd = (plus - minus) / (2 * kFdStep);
    ASSERT_NEAR(grad[i], fd, tolerance * (1 + std::fabs(fd))) << name << "[" << i << "]";
  }
}

}  // namespace whale
