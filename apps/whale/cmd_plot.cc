// whale plot: draws metrics.jsonl columns (of `whale train` or `whale grpo`) as an SVG line chart,
// for model cards and notes: e.g. `whale plot --metrics grpo/metrics.jsonl --y reward --y accuracy
// --smooth 5 --out reward.svg`.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "io/mapped_file.h"
#include "train/metrics.h"
#include "train/report_svg.h"
#include "util/error.h"

namespace {

struct PlotFlags {
  std::vector<std::string> metrics;
  std::vector<std::string> keys;
  std::string x = "step";
  std::string out;
  std::string title;
  std::string y_label;
  int smooth = 1;
  bool log_y = false;
};

double Number(const nlohmann::json& row, const std::string& key) {
  const auto it = row.find(key);
  if (it == row.end() || !it->is_number()) return std::nan("");
  return it->get<double>();
}

// Trailing moving average over the last `window` finite values (gaps stay gaps).
std::vector<double> Smooth(const std::vector<double>& y, int window) {
  if (window <= 1) return y;
  std::vector<double> out(y.size(), std::nan(""));
  std::vector<double> recent;
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) continue;
    recent.push_back(y[i]);
    sum += y[i];
    if (static_cast<int>(recent.size()) > window) {
      sum -= recent[recent.size() - 1 - static_cast<size_t>(window)];
    }
    out[i] = sum / std::min<double>(static_cast<double>(recent.size()), window);
  }
  return out;
}

int Run(const PlotFlags& flags) {
  if (flags.smooth < 1) whale::Fail("--smooth: ", flags.smooth, " must be >= 1");
  std::vector<whale::report::Series> series;
  for (const std::string& spec : flags.metrics) {
    // FILE or FILE=LABEL: the label prefixes the series names when several files are drawn.
    const size_t eq = spec.find('=');
    const std::string path = spec.substr(0, eq);
    const std::string label = eq == std::string::npos ? "" : spec.substr(eq + 1);
    const std::vector<nlohmann::json> rows = whale::ReadMetrics(path);
    for (const std::string& key : flags.keys) {
      whale::report::Series s;
      s.name = label.empty() ? key : label + " " + key;
      bool any = false;
      for (const nlohmann::json& row : rows) {
        s.x.push_back(Number(row, flags.x));
        s.y.push_back(Number(row, key));
        any |= std::isfinite(s.y.back());
      }
      if (!any) whale::Fail(path, ": no row has a numeric '", key, "'");
      if (flags.smooth > 1) s.name += " (mean of " + std::to_string(flags.smooth) + ")";
      s.y = Smooth(s.y, flags.smooth);
      series.push_back(std::move(s));
    }
  }
  whale::report::ChartOptions options;
  options.title = flags.title.empty() ? flags.keys.front() : flags.title;
  options.x_label = flags.x;
  options.y_label = flags.y_label;
  options.log_y = flags.log_y;
  const std::string svg =
      whale::report::StandaloneSvg(whale::report::LineChartSvg(series, options));
  whale::WriteTextFile(flags.out, svg + "\n");
  std::printf("wrote %s (%zu series)\n", flags.out.c_str(), series.size());
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<PlotFlags>();
  sub.add_option("--metrics", flags->metrics, "metrics.jsonl, or FILE=LABEL (repeatable)")
      ->required();
  sub.add_option("--y", flags->keys, "column to draw (repeatable)")->required();
  sub.add_option("--x", flags->x, "column of the x axis")->capture_default_str();
  sub.add_option("--out", flags->out, "the .svg file to write")->required();
  sub.add_option("--title", flags->title, "chart title (default: the first --y)");
  sub.add_option("--y-label", flags->y_label, "y axis label");
  sub.add_option("--smooth", flags->smooth, "trailing moving average over N rows")
      ->capture_default_str();
  sub.add_flag("--log-y", flags->log_y, "logarithmic y axis");
  return [flags] { return Run(*flags); };
}

}  // namespace

WHALE_COMMAND(plot, "draw metrics.jsonl columns as an SVG line chart", Setup);
