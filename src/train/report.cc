#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "io/mapped_file.h"
#include "train/report_svg.h"
#include "util/error.h"

namespace whale {
namespace {

using report::ChartOptions;
using report::EscapeXml;
using report::Series;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Heatmaps average neighbouring logged steps beyond this many columns (keeps the file small and
// every column at least a few pixels wide).
constexpr size_t kMaxHeatmapColumns = 240;

// No '<' or '&' here: the page stays well-formed XML.
constexpr const char* kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 920px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
p.note { font-size: 13px; color: #555; }
.scale-toggle { font-size: 13px; }
.toggle:checked ~ .linear { display: none; }
.toggle:not(:checked) ~ .log { display: none; }
)";

double Number(const nlohmann::json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

bool HasKey(const std::vector<nlohmann::json>& rows, const char* key) {
  for (const auto& row : rows) {
    if (std::isfinite(Number(row, key))) return true;
  }
  return false;
}

std::string Format(double v) {
  if (!std::isfinite(v)) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

std::vector<double> Steps(const std::vector<nlohmann::json>& rows) {
  std::vector<double> steps;
  for (size_t i = 0; i < rows.size(); ++i) {
    double step = Number(rows[i], "step");
    steps.push_back(std::isfinite(step) ? step : static_cast<double>(i));
  }
  return steps;
}

Series Column(const std::vector<nlohmann::json>& rows, const std::vector<double>& steps,
              const char* key, const std::string& name) {
  Series s{name, steps, {}};
  for (const auto& row : rows) s.y.push_back(Number(row, key));
  return s;
}

// The expert loads of one row: [MoE layer][expert] (NaN for non-numbers), with the layer indices.
struct RowLoad {
  std::vector<std::vector<double>> load;
  std::vector<int64_t> layers;
};

RowLoad ParseLoad(const nlohmann::json& row) {
  RowLoad out;
  auto load = row.find("expert_load");
  if (load == row.end() || !load->is_array()) return out;
  for (const auto& layer : *load) {
    std::vector<double> experts;
    if (layer.is_array()) {
      for (const auto& v : layer) experts.push_back(v.is_number() ? v.get<double>() : kNaN);
    }
    out.load.push_back(std::move(experts));
  }
  auto layers = row.find("expert_load_layers");
  for (size_t k = 0; k < out.load.size(); ++k) {
    bool named = layers != row.end() && layers->is_array() && k < layers->size() &&
                 (*layers)[k].is_number_integer();
    out.layers.push_back(named ? (*layers)[k].get<int64_t>() : -1);
  }
  return out;
}

// Load over mean load for every expert (NaN where the mean is not positive).
std::vector<double> Ratios(const std::vector<double>& load) {
  double sum = 0;
  int n = 0;
  for (double v : load) {
    if (std::isfinite(v)) {
      sum += v;
      ++n;
    }
  }
  double mean = n ? sum / n : 0;
  std::vector<double> ratios;
  for (double v : load) ratios.push_back(mean > 0 && std::isfinite(v) ? v / mean : kNaN);
  return ratios;
}

std::string Chart(const std::vector<Series>& series, const std::string& title,
                  const std::string& y_label, bool log_y) {
  ChartOptions options;
  options.title = title;
  options.x_label = "step";
  options.y_label = y_label;
  options.log_y = log_y;
  return report::LineChartSvg(series, options);
}

void AppendExpertLoad(std::string& html, const std::vector<nlohmann::json>& rows,
                      const std::vector<double>& steps) {
  std::vector<RowLoad> loads;
  size_t n_layers = 0;
  for (const auto& row : rows) {
    loads.push_back(ParseLoad(row));
    n_layers = std::max(n_layers, loads.back().load.size());
  }
  html += "<h2>Expert load</h2>\n";
  if (n_layers == 0) {
    html += "<p class=\"note\">No expert_load in the metrics (a dense model, or not logged).</p>\n";
    return;
  }
  html +=
      "<p class=\"note\">Tokens routed to each routed expert per logged step, divided by the "
      "mean over the layer's experts: white = the mean, red = overloaded, blue = underused. "
      "Balancing shows as the colors fading toward white and max/mean falling toward 1.</p>\n";
  std::vector<Series> max_over_mean;
  std::vector<std::string> heatmaps;
  for (size_t k = 0; k < n_layers; ++k) {
    int64_t layer = -1;
    size_t n_experts = 0;
    for (const auto& l : loads) {
      if (k < l.load.size()) {
        if (layer < 0) layer = l.layers[k];
        n_experts = std::max(n_experts, l.load[k].size());
      }
    }
    std::string name = layer >= 0 ? Cat("layer ", layer) : Cat("MoE layer #", k);
    // Columns: logged steps, averaged in groups when there are too many.
    size_t group = (rows.size() + kMaxHeatmapColumns - 1) / kMaxHeatmapColumns;
    group = std::max<size_t>(group, 1);
    size_t cols = (rows.size() + group - 1) / group;
    std::vector<std::vector<double>> grid(n_experts, std::vector<double>(cols, kNaN));
    std::vector<double> col_steps(cols, kNaN);
    Series ratio_series{name, {}, {}};
    for (size_t c = 0; c < cols; ++c) {
      std::vector<double> sum(n_experts, 0);
      std::vector<int> count(n_experts, 0);
      for (size_t i = c * group; i < std::min(rows.size(), (c + 1) * group); ++i) {
        if (std::isnan(col_steps[c])) col_steps[c] = steps[i];
        double max_ratio = kNaN;
        if (k < loads[i].load.size()) {
          std::vector<double> ratios = Ratios(loads[i].load[k]);
          for (size_t e = 0; e < ratios.size(); ++e) {
            if (std::isnan(ratios[e])) continue;
            sum[e] += ratios[e];
            ++count[e];
            max_ratio = std::isnan(max_ratio) ? ratios[e] : std::max(max_ratio, ratios[e]);
          }
        }
        ratio_series.x.push_back(steps[i]);
        ratio_series.y.push_back(max_ratio);
      }
      for (size_t e = 0; e < n_experts; ++e) {
        if (count[e]) grid[e][c] = sum[e] / count[e];
      }
    }
    ChartOptions options;
    options.title = Cat(name, ": load / mean load per expert (", n_experts, " experts)",
                        group > 1 ? Cat(", ", group, " logged steps per column") : "");
    options.x_label = "step";
    options.y_label = "expert";
    heatmaps.push_back(report::HeatmapSvg(grid, col_steps, options));
    max_over_mean.push_back(std::move(ratio_series));
  }
  html += Chart(max_over_mean, "Max expert load / mean load (1 = perfectly balanced)", "max / mean",
                false);
  for (const auto& svg : heatmaps) html += svg;
}

void AppendSummary(std::string& html, const std::vector<nlohmann::json>& rows,
                   const std::vector<double>& steps, const nlohmann::json& extra_info) {
  html += "<table>\n";
  auto row = [&](const std::string& key, const std::string& value) {
    html += Cat("<tr><th>", EscapeXml(key), "</th><td>", EscapeXml(value), "</td></tr>\n");
  };
  row("logged steps", Cat(rows.size()));
  if (!rows.empty()) {
    row("step range", Cat(Format(steps.front()), " to ", Format(steps.back())));
    for (const char* key : {"loss", "loss_main", "loss_mtp", "loss_balance"}) {
      if (!HasKey(rows, key)) continue;
      double first = Number(rows.front(), key), last = Number(rows.back(), key);
      double best = kNaN;
      for (const auto& r : rows) {
        double v = Number(r, key);
        if (std::isfinite(v)) best = std::isnan(best) ? v : std::min(best, v);
      }
      row(key, Cat("first ", Format(first), ", last ", Format(last), ", min ", Format(best)));
    }
    double tokens_sum = 0;
    int tokens_n = 0;
    for (const auto& r : rows) {
      double v = Number(r, "tokens_per_s");
      if (std::isfinite(v)) {
        tokens_sum += v;
        ++tokens_n;
      }
    }
    if (tokens_n) row("mean tokens/s", Format(tokens_sum / tokens_n));
    double elapsed = Number(rows.back(), "elapsed_s");
    if (std::isfinite(elapsed)) row("elapsed", Cat(Format(elapsed), " s"));
  }
  if (extra_info.is_object()) {
    for (const auto& [key, value] : extra_info.items()) {
      row(key, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  html += "</table>\n";
}

// Reinforcement-learning runs (whale grpo) log rewards and policy statistics; pretraining rows
// have no "reward" and get nothing here.
void AppendReinforcement(std::string& html, const std::vector<nlohmann::json>& rows,
                         const std::vector<double>& steps) {
  if (!HasKey(rows, "reward")) return;
  const auto chart = [&](std::initializer_list<std::pair<const char*, const char*>> keys,
                         const std::string& title, const std::string& y_label) {
    std::vector<Series> series;
    for (const auto& [key, name] : keys)
      if (HasKey(rows, key)) series.push_back(Column(rows, steps, key, name));
    if (!series.empty()) html += Chart(series, title, y_label, false);
  };
  html += "<h2>Reinforcement learning</h2>\n";
  chart({{"reward", "mean reward"}, {"accuracy", "accuracy"}, {"format_rate", "format ok"}},
        "Reward, accuracy and format", "per completion");
  chart({{"response_length", "mean completion tokens"}}, "Response length", "tokens");
  chart({{"kl", "KL to the reference (k3)"}}, "KL", "nats / token");
  chart({{"entropy", "policy entropy"}}, "Entropy", "nats / token");
  chart({{"clip_fraction", "clipped tokens"}, {"truncated_rate", "truncated completions"}},
        "Clip fraction and truncation", "fraction");
  chart({{"mean_ratio", "mean ratio π/π_old"}}, "Importance ratio", "ratio");
  chart({{"difficulty_mean", "mean difficulty of the mix"}}, "Curriculum", "difficulty");
  chart({{"groups_sampled", "groups sampled"}, {"groups_kept", "groups kept"}}, "Groups", "groups");
  chart({{"rollout_s", "sampling"}, {"train_s", "training"}}, "Step time", "seconds");
}

}  // namespace

std::string RenderTrainingReport(const std::vector<nlohmann::json>& rows, const std::string& title,
                                 const nlohmann::json& extra_info) {
  std::vector<double> steps = Steps(rows);
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  html += Cat("<title>", EscapeXml(title), "</title>\n<style>", kStyle, report::kChartCss,
              "</style>\n</head>\n");
  html += Cat("<body>\n<h1>", EscapeXml(title), "</h1>\n");
  AppendSummary(html, rows, steps, extra_info);
  if (rows.empty()) {
    html += "<p class=\"note\">No metrics were logged yet.</p>\n</body>\n</html>\n";
    return html;
  }

  html += "<h2>Loss</h2>\n<div>\n";
  std::vector<Series> losses;
  const std::pair<const char*, const char*> loss_keys[] = {{"loss", "total"},
                                                           {"loss_main", "main (next token)"},
                                                           {"loss_mtp", "MTP"},
                                                           {"loss_balance", "balance"}};
  for (const auto& [key, name] : loss_keys) {
    if (HasKey(rows, key)) losses.push_back(Column(rows, steps, key, name));
  }
  html +=
      "<input type=\"checkbox\" id=\"loss-log\" class=\"toggle\" checked=\"checked\"/>"
      "<label for=\"loss-log\" class=\"scale-toggle\"> log scale</label>\n";
  html += Cat("<div class=\"log\">", Chart(losses, "Loss (log scale)", "loss", true), "</div>\n");
  html += Cat("<div class=\"linear\">", Chart(losses, "Loss", "loss", false), "</div>\n</div>\n");

  html += "<h2>Optimization</h2>\n";
  html += Chart({Column(rows, steps, "lr", "learning rate")}, "Learning rate", "lr", false);
  html += Chart({Column(rows, steps, "grad_norm", "gradient norm (before clipping)")},
                "Gradient norm", "global L2 norm", false);
  html += "<h2>Throughput</h2>\n";
  html += Chart({Column(rows, steps, "tokens_per_s", "tokens/s")}, "Training throughput",
                "tokens / s", false);
  AppendReinforcement(html, rows, steps);
  AppendExpertLoad(html, rows, steps);
  html += "</body>\n</html>\n";
  return html;
}

void WriteTrainingReport(const std::string& out_html_path, const std::vector<nlohmann::json>& rows,
                         const std::string& title, const nlohmann::json& extra_info) {
  WriteTextFile(out_html_path, RenderTrainingReport(rows, title, extra_info));
}

}  // namespace whale
