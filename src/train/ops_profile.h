// OpProfile: opt-in wall-clock time per training op, to find where a step's time goes
// (bench/train prints the breakdown). TrainModel and Trainer time their leaf ops into a profile
// when given one (set_profile); with none, the timers cost a null check.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace whale {

struct OpProfile {
  // Op name -> total seconds and calls. Names do not nest: a step's time is their sum plus
  // whatever no timer covers.
  std::map<std::string, double> seconds;
  // The same in CPU seconds of the whole process (every thread, spinning ones included): on a
  // machine shared with other work, the single-threaded figure that stays meaningful.
  std::map<std::string, double> cpu_seconds;
  std::map<std::string, int64_t> calls;
};

// Adds the wall-clock time from construction to destruction to profile->seconds[name]
// (nothing when profile is null).
class OpTimer {
 public:
  OpTimer(OpProfile* profile, std::string_view name) : profile_(profile) {
    if (profile_ == nullptr) return;
    name_ = std::string(name);
    start_ = std::chrono::steady_clock::now();
    cpu_start_ = ProcessCpuSeconds();
  }
  ~OpTimer() {
    if (profile_ == nullptr) return;
    profile_->seconds[name_] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    profile_->cpu_seconds[name_] += ProcessCpuSeconds() - cpu_start_;
    ++profile_->calls[name_];
  }

  // CPU time used by this process so far.
  static double ProcessCpuSeconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* profile_;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
  double cpu_start_ = 0;
};

}  // namespace whale
