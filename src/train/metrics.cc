#include "train/metrics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/mapped_file.h"
#include "util/error.h"

namespace whale {

MetricsWriter::MetricsWriter(const std::string& path, std::optional<int64_t> resume_after_step)
    : path_(path) {
  std::string kept;
  if (resume_after_step && std::filesystem::exists(path)) {
    for (const auto& row : ReadMetrics(path)) {
      const auto step = row.find("step");
      if (step != row.end() && step->is_number() && step->get<double>() <= *resume_after_step) {
        kept += row.dump() + "\n";
      }
    }
  }
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) Fail(path, ": cannot create the metrics file: ", std::strerror(errno));
  if (!kept.empty() &&
      (std::fwrite(kept.data(), 1, kept.size(), file_) != kept.size() || std::fflush(file_) != 0)) {
    Fail(path, ": write failed: ", std::strerror(errno));
  }
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::Write(const nlohmann::json& row) {
  if (!row.is_object()) Fail(path_, ": a metrics row must be a JSON object, got ", row.dump());
  std::string line = row.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    Fail(path_, ": write failed: ", std::strerror(errno));
  }
}

std::vector<nlohmann::json> ReadMetrics(const std::string& path) {
  std::string text = ReadTextFile(path);
  std::vector<nlohmann::json> rows;
  size_t pos = 0;
  int64_t line_number = 0;
  while (pos < text.size()) {
    ++line_number;
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // a line cut short by a crash
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.is_object()) {
      Fail(path, ":", line_number, ": expected one JSON object per line, found \"",
           line.substr(0, 60), line.size() > 60 ? "..." : "", "\"");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace whale
