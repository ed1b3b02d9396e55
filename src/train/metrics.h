// Training metrics as JSON Lines: one JSON object per logged step, appended and flushed line by
// line so a crashed or running job leaves a readable file.
//
// Row keys written by the trainer (common convention): step, loss, loss_main, loss_mtp,
// loss_balance, lr, grad_norm, tokens_per_s, elapsed_s, expert_load ([layer][expert] token counts
// of the step, MoE layers only) and expert_load_layers (their layer indices). NaN and infinity
// are not JSON: they are written as null.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace whale {

class MetricsWriter {
 public:
  // Creates (truncates) `path`. With `resume_after_step`, keeps instead the existing rows whose
  // step is at most that value and appends after them (a resumed run rewrites what came later).
  explicit MetricsWriter(const std::string& path,
                         std::optional<int64_t> resume_after_step = std::nullopt);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends one row (an object) and flushes. Throws Error if the write fails.
  void Write(const nlohmann::json& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Reads every row. A last line without its newline (a write cut short) is ignored; any other
// line that is not a JSON object is an error naming the file and line.
std::vector<nlohmann::json> ReadMetrics(const std::string& path);

}  // namespace whale
