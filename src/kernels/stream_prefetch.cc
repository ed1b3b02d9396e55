#include "kernels/stream_prefetch.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace whale {

bool RunningStreamPrefetchCpuDefault() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return true;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  if (std::string_view(vendor) != "AuthenticAMD" || !__get_cpuid(1, &eax, &ebx, &ecx, &edx))
    return true;
  // The displayed family: the base family, plus the extended family when the base is 0xF.
  const unsigned base = (eax >> 8) & 0xF;
  const unsigned family = base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
  return family != 0x17 && family != 0x19;
#else
  return true;
#endif
}

bool RunningStreamPrefetchSetting(const char* setting, bool cpu_default) {
  if (setting == nullptr || *setting == '\0') return cpu_default;
  const std::string_view value(setting);
  if (value == "on") return true;
  if (value == "off") return false;
  Fail("WHALE_STREAM_PREFETCH='", value,
       "': expected \"on\" or \"off\" (or unset: the CPU's default, off on AMD families 17h and "
       "19h)");
}

bool RunningStreamPrefetch() {
  static const bool wanted = RunningStreamPrefetchSetting(std::getenv("WHALE_STREAM_PREFETCH"),
                                                          RunningStreamPrefetchCpuDefault());
  return wanted;
}

}  // namespace whale
