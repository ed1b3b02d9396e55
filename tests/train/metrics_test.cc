#include "train/metrics.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <limits>

#include "io/mapped_file.h"
#include "util/error.h"

namespace whale {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("whale_metrics_" + std::to_string(getpid()) + "_" + name))
      .string();
}

TEST(Metrics, WritesOneFlushedLinePerRowAndReadsThemBack) {
  std::string path = TempPath("rt.jsonl");
  MetricsWriter writer(path);
  writer.Write({{"step", 1}, {"loss", 5.5}, {"expert_load", {{1, 2}, {3, 0}}}});
  // Flushed per line: readable while the writer is still open.
  auto rows = ReadMetrics(path);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["loss"].get<double>(), 5.5);
  writer.Write({{"step", 2},
                {"loss", std::numeric_limits<double>::quiet_NaN()},
                {"lr", std::numeric_limits<double>::infinity()}});
  rows = ReadMetrics(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[1]["loss"].is_null());  // NaN is not JSON
  EXPECT_TRUE(rows[1]["lr"].is_null());
  EXPECT_EQ(rows[0]["expert_load"][1][0].get<int>(), 3);
  EXPECT_THROW(writer.Write(nlohmann::json::array({1, 2})), Error);
  std::remove(path.c_str());
}

TEST(Metrics, ToleratesACutLastLineButNotGarbage) {
  std::string path = TempPath("cut.jsonl");
  WriteTextFile(path, "{\"step\":1}\n\n{\"step\":2}\n{\"step\":3,\"lo");
  EXPECT_EQ(ReadMetrics(path).size(), 2u);
  WriteTextFile(path, "{\"step\":1}\nnot json\n{\"step\":2}\n");
  try {
    ReadMetrics(path);
    FAIL() << "garbage accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2"), std::string::npos) << e.what();
  }
  WriteTextFile(path, "[1,2]\n");
  EXPECT_THROW(ReadMetrics(path), Error);
  EXPECT_THROW(ReadMetrics(path + ".missing"), Error);
  std::remove(path.c_str());
}

TEST(Metrics, ResumeKeepsRowsUpToTheStep) {
  std::string path = TempPath("resume.jsonl");
  {
    MetricsWriter writer(path);
    for (int step = 1; step <= 5; ++step) writer.Write({{"step", step}});
  }
  {
    MetricsWriter writer(path, 3);
    writer.Write({{"step", 4}, {"resumed", true}});
  }
  auto rows = ReadMetrics(path);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[2]["step"].get<int>(), 3);
  EXPECT_TRUE(rows[3]["resumed"].get<bool>());
  {
    MetricsWriter fresh(path);  // without a resume step: a new file
  }
  EXPECT_TRUE(ReadMetrics(path).empty());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace whale
