#include "kernels/stream_prefetch.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "util/error.h"

namespace whale {
namespace {

TEST(RunningStreamPrefetchSetting, UnsetOrEmptyKeepsTheCpuDefault) {
  EXPECT_TRUE(RunningStreamPrefetchSetting(nullptr, true));
  EXPECT_FALSE(RunningStreamPrefetchSetting(nullptr, false));
  EXPECT_TRUE(RunningStreamPrefetchSetting("", true));
  EXPECT_FALSE(RunningStreamPrefetchSetting("", false));
}

TEST(RunningStreamPrefetchSetting, OnAndOffOverrideIt) {
  EXPECT_TRUE(RunningStreamPrefetchSetting("on", false));
  EXPECT_FALSE(RunningStreamPrefetchSetting("off", true));
}

TEST(RunningStreamPrefetchSetting, AnyOtherValueNamesTheVariableAndTheValue) {
  for (const char* bad : {"ON", "1", "yes", "off ", "auto"}) {
    try {
      RunningStreamPrefetchSetting(bad, true);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("WHALE_STREAM_PREFETCH='" + std::string(bad) + "'"), std::string::npos)
          << message;
      EXPECT_NE(message.find("expected \"on\" or \"off\""), std::string::npos) << message;
    }
  }
}

// The cpuid decoding against the kernel's own reading of the CPU (/proc/cpuinfo, Linux x86).
TEST(RunningStreamPrefetchCpuDefault, OffExactlyOnAmdFamilies17hAnd19h) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor;
  int family = -1;
  while (std::getline(cpuinfo, line) && (vendor.empty() || family < 0)) {
    const auto value =
        line.substr(line.find(':') == std::string::npos ? line.size() : line.find(':') + 1);
    if (line.rfind("vendor_id", 0) == 0) vendor = value.substr(value.find_first_not_of(' '));
    if (line.rfind("cpu family", 0) == 0) family = std::stoi(value);
  }
  if (vendor.empty() || family < 0) GTEST_SKIP() << "no x86 /proc/cpuinfo here";
  EXPECT_EQ(RunningStreamPrefetchCpuDefault(),
            !(vendor == "AuthenticAMD" && (family == 0x17 || family == 0x19)))
      << vendor << " family " << family;
}

}  // namespace
}  // namespace whale
