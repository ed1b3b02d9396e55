#include "train/report_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "util/error.h"

namespace whale::report {

const char* const kChartCss = R"(
svg.chart { display: block; max-width: 100%; height: auto; margin: 6px 0 14px 0; }
.chart-title { font-size: 14px; font-weight: 600; }
.axis-label { font-size: 12px; fill: #333; }
.tick { font-size: 11px; fill: #444; }
.legend { font-size: 12px; fill: #222; }
.no-data { font-size: 14px; fill: #999; }
.grid { stroke: #e6e6e6; stroke-width: 1; }
)";

std::string StandaloneSvg(const std::string& chart_svg) {
  const size_t open_end = chart_svg.find('>');
  if (chart_svg.rfind("<svg", 0) != 0 || open_end == std::string::npos) return chart_svg;
  return chart_svg.substr(0, open_end + 1) + "\n<style>text { font-family: sans-serif; }" +
         kChartCss + "</style>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>" +
         chart_svg.substr(open_end + 1);
}

namespace {

// Distinct colors that stay readable on white.
constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

std::string Fixed(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", v);
  return buffer;
}

struct Frame {
  double left = 72, right = 24, top = 52, bottom = 48;
};

// Title, axis labels and the plot-area border shared by both chart kinds.
void AppendFrame(std::string& svg, const ChartOptions& options, const Frame& frame, double x1,
                 double y1) {
  svg += Cat("<text x=\"", Fixed(frame.left), "\" y=\"20\" class=\"chart-title\">",
             EscapeXml(options.title), "</text>\n");
  svg += Cat("<rect x=\"", Fixed(frame.left), "\" y=\"", Fixed(frame.top), "\" width=\"",
             Fixed(x1 - frame.left), "\" height=\"", Fixed(y1 - frame.top),
             "\" fill=\"none\" stroke=\"#888\"/>\n");
  svg += Cat("<text x=\"", Fixed((frame.left + x1) / 2), "\" y=\"", Fixed(options.height - 8),
             "\" text-anchor=\"middle\" class=\"axis-label\">", EscapeXml(options.x_label),
             "</text>\n");
  double mid = (frame.top + y1) / 2;
  svg += Cat("<text x=\"14\" y=\"", Fixed(mid), "\" transform=\"rotate(-90 14 ", Fixed(mid),
             ")\" text-anchor=\"middle\" class=\"axis-label\">", EscapeXml(options.y_label),
             "</text>\n");
}

std::string SvgOpen(const ChartOptions& options) {
  return Cat("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"", options.width,
             "\" height=\"", options.height, "\" viewBox=\"0 0 ", options.width, " ",
             options.height, "\" role=\"img\" aria-label=\"", EscapeXml(options.title), "\">\n");
}

std::string NoData(const ChartOptions& options, const Frame& frame, double x1, double y1) {
  std::string svg = SvgOpen(options);
  AppendFrame(svg, options, frame, x1, y1);
  svg += Cat("<text x=\"", Fixed((frame.left + x1) / 2), "\" y=\"", Fixed((frame.top + y1) / 2),
             "\" text-anchor=\"middle\" class=\"no-data\">no data</text>\n</svg>\n");
  return svg;
}

// Diverging blue-white-red on log2(ratio), saturating at 1/4 and 4 times the mean.
std::string RatioColor(double ratio) {
  if (std::isnan(ratio)) return "#cccccc";
  double t = ratio <= 0 ? -1.0 : std::clamp(std::log2(ratio) / 2.0, -1.0, 1.0);
  const double white[3] = {247, 247, 247};
  const double blue[3] = {33, 102, 172};
  const double red[3] = {178, 24, 43};
  const double* end = t < 0 ? blue : red;
  double a = std::fabs(t);
  char buffer[8];
  int c[3];
  for (int i = 0; i < 3; ++i)
    c[i] = static_cast<int>(std::lround(white[i] + a * (end[i] - white[i])));
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buffer;
}

}  // namespace

std::string EscapeXml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string TickLabel(double value) {
  if (value == 0) return "0";
  double a = std::fabs(value);
  char buffer[32];
  if (a >= 1e6 || a < 1e-3) {
    std::snprintf(buffer, sizeof buffer, "%.2g", value);
    // "2.5e-05" -> "2.5e-5"
    std::string s = buffer;
    size_t e = s.find('e');
    if (e != std::string::npos) {
      std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
      std::string sign = exponent[0] == '-' ? "-" : "";
      size_t digits = exponent.find_first_not_of("+-0");
      return mantissa + "e" + sign + (digits == std::string::npos ? "0" : exponent.substr(digits));
    }
    return s;
  }
  if (a >= 1e4) {
    std::snprintf(buffer, sizeof buffer, "%.4gk", value / 1000);
    return buffer;
  }
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  return buffer;
}

std::vector<double> NiceTicks(double lo, double hi, int target, bool log_scale) {
  std::vector<double> ticks;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo || target < 1) return ticks;
  if (log_scale) {
    if (lo <= 0) return ticks;
    int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
    int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
    int decades = std::max(1, last - first);
    if (decades <= 2) {
      for (int d = first; d <= last; ++d) {
        for (double m : {1.0, 2.0, 5.0}) {
          double v = m * std::pow(10.0, d);
          if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
        }
      }
    } else {
      int every = std::max(1, (decades + target - 1) / target);
      for (int d = first; d <= last; ++d) {
        double v = std::pow(10.0, d);
        if ((d - first) % every == 0 && v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) {
          ticks.push_back(v);
        }
      }
    }
    return ticks;
  }
  double span = hi - lo;
  if (span <= 0) span = std::fabs(hi) > 0 ? std::fabs(hi) : 1.0;
  double raw = span / target;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / magnitude;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  double start = std::ceil(lo / step - 1e-9);
  for (double k = start;; k += 1) {
    double v = k * step;
    if (v > hi + step * 1e-9) break;
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    if (ticks.size() > 1000) break;  // unreachable for finite ranges; a guard against rounding
  }
  return ticks;
}

std::string LineChartSvg(const std::vector<Series>& series, const ChartOptions& options) {
  Frame frame;
  double x1 = options.width - frame.right, y1 = options.height - frame.bottom;
  auto usable = [&](double y) { return std::isfinite(y) && (!options.log_y || y > 0); };
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series) {
    WHALE_ASSERT(s.x.size() == s.y.size(), s.name, ": ", s.x.size(), " x vs ", s.y.size(), " y");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !usable(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(xmin)) return NoData(options, frame, x1, y1);

  // Axis ranges: a flat series still gets a visible band; linear axes get 5% headroom.
  if (xmax == xmin) {
    xmin -= 1;
    xmax += 1;
  }
  double tmin = options.log_y ? std::log10(ymin) : ymin;
  double tmax = options.log_y ? std::log10(ymax) : ymax;
  if (tmax == tmin) {
    double pad = options.log_y ? 0.5 : (std::fabs(tmin) > 0 ? std::fabs(tmin) * 0.1 : 1.0);
    tmin -= pad;
    tmax += pad;
  } else {
    double pad = (tmax - tmin) * 0.05;
    tmin -= pad;
    tmax += pad;
  }
  auto sx = [&](double x) { return frame.left + (x - xmin) / (xmax - xmin) * (x1 - frame.left); };
  auto sy = [&](double y) {
    double t = options.log_y ? std::log10(y) : y;
    return y1 - (t - tmin) / (tmax - tmin) * (y1 - frame.top);
  };

  std::string svg = SvgOpen(options);
  // Grid and tick labels first, so the lines draw over them.
  double lo = options.log_y ? std::pow(10.0, tmin) : tmin;
  double hi = options.log_y ? std::pow(10.0, tmax) : tmax;
  for (double v : NiceTicks(lo, hi, 6, options.log_y)) {
    double y = sy(v);
    svg += Cat("<line x1=\"", Fixed(frame.left), "\" y1=\"", Fixed(y), "\" x2=\"", Fixed(x1),
               "\" y2=\"", Fixed(y), "\" class=\"grid\"/>\n");
    svg += Cat("<text x=\"", Fixed(frame.left - 6), "\" y=\"", Fixed(y + 4),
               "\" text-anchor=\"end\" class=\"tick\">", TickLabel(v), "</text>\n");
  }
  for (double v : NiceTicks(xmin, xmax, 8, false)) {
    double x = sx(v);
    svg += Cat("<line x1=\"", Fixed(x), "\" y1=\"", Fixed(frame.top), "\" x2=\"", Fixed(x),
               "\" y2=\"", Fixed(y1), "\" class=\"grid\"/>\n");
    svg += Cat("<text x=\"", Fixed(x), "\" y=\"", Fixed(y1 + 16),
               "\" text-anchor=\"middle\" class=\"tick\">", TickLabel(v), "</text>\n");
  }
  AppendFrame(svg, options, frame, x1, y1);

  double legend_x = frame.left;
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* color = kPalette[k % kPaletteSize];
    svg += Cat("<g class=\"series\"><title>", EscapeXml(s.name), "</title>\n");
    // Polylines between gaps; a point with no neighbour is a dot.
    std::string points;
    int run = 0;
    double last_x = 0, last_y = 0;
    auto flush = [&] {
      if (run == 1) {
        svg += Cat("<circle cx=\"", Fixed(last_x), "\" cy=\"", Fixed(last_y),
                   "\" r=\"2.5\" fill=\"", color, "\"/>\n");
      } else if (run > 1) {
        svg += Cat("<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"1.6\" points=\"",
                   points, "\"/>\n");
      }
      points.clear();
      run = 0;
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !usable(s.y[i])) {
        flush();
        continue;
      }
      last_x = sx(s.x[i]);
      last_y = sy(s.y[i]);
      if (run > 0) points += ' ';
      points += Fixed(last_x) + "," + Fixed(last_y);
      ++run;
    }
    flush();
    svg += "</g>\n";
    // Legend entry in the top margin.
    svg += Cat("<line x1=\"", Fixed(legend_x), "\" y1=\"36\" x2=\"", Fixed(legend_x + 18),
               "\" y2=\"36\" stroke=\"", color, "\" stroke-width=\"3\"/>\n");
    svg += Cat("<text x=\"", Fixed(legend_x + 22), "\" y=\"40\" class=\"legend\">",
               EscapeXml(s.name), "</text>\n");
    legend_x += 34 + 7.0 * static_cast<double>(s.name.size());
  }
  svg += "</svg>\n";
  return svg;
}

std::string HeatmapSvg(const std::vector<std::vector<double>>& values,
                       const std::vector<double>& steps, const ChartOptions& options) {
  Frame frame;
  frame.right = 96;  // room for the color bar
  size_t rows = values.size();
  size_t cols = rows ? values[0].size() : 0;
  for (const auto& row : values) WHALE_ASSERT(row.size() == cols, "ragged heatmap");
  WHALE_ASSERT(steps.size() == cols, "heatmap: ", steps.size(), " steps for ", cols, " columns");
  double cell_h = rows ? std::clamp(260.0 / static_cast<double>(rows), 3.0, 16.0) : 16.0;
  ChartOptions sized = options;
  sized.height = static_cast<int>(frame.top + frame.bottom + cell_h * std::max<size_t>(rows, 4));
  double x1 = sized.width - frame.right, y1 = sized.height - frame.bottom;
  if (rows == 0 || cols == 0) return NoData(sized, frame, x1, y1);

  double cell_w = (x1 - frame.left) / static_cast<double>(cols);
  std::string svg = SvgOpen(sized);
  // Tooltips per cell only while the file stays small.
  bool titles = rows * cols <= 6000;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      double ratio = values[r][c];
      svg += Cat("<rect x=\"", Fixed(frame.left + cell_w * static_cast<double>(c)), "\" y=\"",
                 Fixed(frame.top + cell_h * static_cast<double>(r)), "\" width=\"",
                 Fixed(cell_w + 0.3), "\" height=\"", Fixed(cell_h + 0.3), "\" fill=\"",
                 RatioColor(ratio), "\"");
      if (titles) {
        char buffer[96];
        if (std::isfinite(ratio)) {
          std::snprintf(buffer, sizeof buffer, "expert %zu, step %.0f: %.2f x mean", r, steps[c],
                        ratio);
        } else {
          std::snprintf(buffer, sizeof buffer, "expert %zu, step %.0f: no data", r, steps[c]);
        }
        svg += Cat("><title>", buffer, "</title></rect>\n");
      } else {
        svg += "/>\n";
      }
    }
  }
  // Expert ticks at row centers; step ticks at about eight evenly spaced columns.
  for (double v : NiceTicks(0, static_cast<double>(rows - 1), std::min<int>(8, rows), false)) {
    double y = frame.top + cell_h * (v + 0.5);
    svg += Cat("<text x=\"", Fixed(frame.left - 6), "\" y=\"", Fixed(y + 4),
               "\" text-anchor=\"end\" class=\"tick\">", TickLabel(v), "</text>\n");
  }
  size_t every = std::max<size_t>(1, (cols + 7) / 8);
  for (size_t c = 0; c < cols; c += every) {
    double x = frame.left + cell_w * (static_cast<double>(c) + 0.5);
    svg += Cat("<line x1=\"", Fixed(x), "\" y1=\"", Fixed(y1), "\" x2=\"", Fixed(x), "\" y2=\"",
               Fixed(y1 + 4), "\" stroke=\"#888\"/>\n");
    svg += Cat("<text x=\"", Fixed(x), "\" y=\"", Fixed(y1 + 16),
               "\" text-anchor=\"middle\" class=\"tick\">", TickLabel(steps[c]), "</text>\n");
  }
  AppendFrame(svg, sized, frame, x1, y1);
  // Color bar: log2 ratio from -2 (1/4 of the mean) to +2 (4 times).
  double bar_x = x1 + 18, bar_top = frame.top, bar_h = std::max(60.0, y1 - frame.top);
  const int kSteps = 24;
  for (int i = 0; i < kSteps; ++i) {
    double t = 2.0 - 4.0 * (i + 0.5) / kSteps;
    svg += Cat("<rect x=\"", Fixed(bar_x), "\" y=\"", Fixed(bar_top + bar_h * i / kSteps),
               "\" width=\"14\" height=\"", Fixed(bar_h / kSteps + 0.3), "\" fill=\"",
               RatioColor(std::pow(2.0, t)), "\"/>\n");
  }
  const char* labels[] = {"4x", "2x", "1x mean", "1/2", "1/4"};
  for (int i = 0; i < 5; ++i) {
    double y = bar_top + bar_h * i / 4.0;
    svg += Cat("<text x=\"", Fixed(bar_x + 18), "\" y=\"", Fixed(y + 4), "\" class=\"tick\">",
               labels[i], "</text>\n");
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace whale::report
