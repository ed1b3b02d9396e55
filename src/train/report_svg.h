// Inline SVG charts for the training report: line charts with ticked axes and an expert-load
// heatmap. Each function returns a complete <svg> element (well-formed XML, no external assets).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace whale::report {

// One line of a chart. Non-finite y values (NaN from null in the metrics) are gaps.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_y = false;  // non-positive values are gaps then
  int width = 880, height = 300;
};

// The CSS rules the charts' classes need (no '<' or '&', so a page embedding it stays XML).
extern const char* const kChartCss;

// A chart as a file of its own: the chart CSS embedded and a white background, so it renders the
// same in a browser, an image viewer or a model card.
std::string StandaloneSvg(const std::string& chart_svg);

std::string LineChartSvg(const std::vector<Series>& series, const ChartOptions& options);

// values[row][column] = load / mean load of expert `row` at logged step `steps[column]`
// (columns may be wider bins of steps: steps holds each column's first step). Colors are a
// diverging scale on log2(ratio): blue below the mean, white at the mean, red above.
std::string HeatmapSvg(const std::vector<std::vector<double>>& values,
                       const std::vector<double>& steps, const ChartOptions& options);

// Tick positions for [lo, hi]: about `target` "nice" values (1, 2, 5 x 10^k); powers of ten (or
// 1-2-5 multiples when the range is short) for a log axis.
std::vector<double> NiceTicks(double lo, double hi, int target, bool log_scale);
// Short label for a tick value ("0.001", "2.5e-05", "12k").
std::string TickLabel(double value);
// Escapes & < > " for text and attribute values.
std::string EscapeXml(std::string_view text);

}  // namespace whale::report
