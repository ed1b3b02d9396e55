// ProgressLine: one self-overwriting stderr line with percentage, rate and ETA for long work.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace whale {

class ProgressLine {
 public:
  // `unit` names what is counted ("B" prints as bytes with binary prefixes, else as is).
  ProgressLine(std::string label, double total, std::string unit);
  // Sets the amount done; redraws at most a few times per second.
  void Update(double done);
  // Draws the final state and ends the line.
  void Finish();

 private:
  void Draw(bool final);
  std::string label_;
  double total_;
  std::string unit_;
  double done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool interactive_;
};

// A duration for a progress line: "3m05s" under an hour, else "1h02m".
std::string FormatDuration(double seconds);

inline double SecondsOf(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// "1.50 GiB" for bytes, "12.3 k" for other counts.
std::string HumanAmount(double amount, const std::string& unit);

}  // namespace whale
