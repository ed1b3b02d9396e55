// The training report: one self-contained HTML file (inline SVG and CSS, no scripts, no external
// assets) that a person opens to see how a run went: the losses (main, MTP, balance; linear or
// log scale), learning rate, gradient norm, throughput, and per MoE layer an expert-load heatmap
// over the logged steps plus the max/mean load ratio, which shows the bias balancing at work.
// Rows with a "reward" key (whale grpo) add reward, accuracy, length, KL, entropy, clip fraction,
// ratio, curriculum and group charts.
//
// Input is the rows of metrics.jsonl (see metrics.h for the keys). Missing keys, nulls and NaN are
// gaps; empty input gives a report that says so.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace whale {

// `extra_info` is a JSON object shown as a key/value table (model, data, settings...); null or
// empty for none.
std::string RenderTrainingReport(const std::vector<nlohmann::json>& rows, const std::string& title,
                                 const nlohmann::json& extra_info);

// Renders and writes the report to `out_html_path`; throws Error naming the path if it cannot.
void WriteTrainingReport(const std::string& out_html_path, const std::vector<nlohmann::json>& rows,
                         const std::string& title, const nlohmann::json& extra_info);

}  // namespace whale
