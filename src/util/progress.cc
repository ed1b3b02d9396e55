#include "util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace whale {

std::string HumanAmount(double amount, const std::string& unit) {
  const bool bytes = unit == "B";
  const double base = bytes ? 1024.0 : 1000.0;
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int p = 0;
  while (amount >= base && p < 4) {
    amount /= base;
    ++p;
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.2f %s%s%s", amount, prefixes[p], bytes && p ? "i" : "",
                unit.c_str());
  return text;
}

ProgressLine::ProgressLine(std::string label, double total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      interactive_(isatty(STDERR_FILENO)) {}

void ProgressLine::Update(double done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  // A terminal gets 4 redraws a second; a log file one line every 10 seconds.
  const auto period = interactive_ ? std::chrono::milliseconds(250) : std::chrono::seconds(10);
  if (now - last_draw_ < period) return;
  last_draw_ = now;
  Draw(false);
}

void ProgressLine::Finish() {
  done_ = total_;
  Draw(true);
}

void ProgressLine::Draw(bool final) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? done_ / seconds : 0;
  const double eta = rate > 0 ? (total_ - done_) / rate : 0;
  const double percent = total_ > 0 ? 100.0 * done_ / total_ : 100.0;
  std::fprintf(stderr, "%s%s: %5.1f%%  %s / %s  %s/s  %s %.0fs%s", interactive_ ? "\r" : "",
               label_.c_str(), percent, HumanAmount(done_, unit_).c_str(),
               HumanAmount(total_, unit_).c_str(), HumanAmount(rate, unit_).c_str(),
               final ? "took" : "ETA", final ? seconds : eta,
               interactive_ && !final ? "   " : "\n");
  std::fflush(stderr);
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return text;
}

}  // namespace whale
