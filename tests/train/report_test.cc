#include "train/report.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "train/report_svg.h"

namespace whale {
namespace {

// A strict well-formedness check (XML rules, which the report follows so that any parser reads
// it): balanced tags, quoted attributes, no bare '<' or '&'. Returns "" or the first problem, and
// counts the elements by name.
std::string CheckWellFormed(const std::string& doc, std::map<std::string, int>& counts) {
  std::vector<std::string> stack;
  auto check_entities = [](std::string_view text) -> bool {
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '<') return false;
      if (text[i] != '&') continue;
      size_t end = text.find(';', i);
      if (end == std::string_view::npos) return false;
      std::string_view name = text.substr(i + 1, end - i - 1);
      if (name != "amp" && name != "lt" && name != "gt" && name != "quot" && name != "apos" &&
          !(name.size() > 1 && name[0] == '#')) {
        return false;
      }
    }
    return true;
  };
  size_t pos = 0;
  bool root_seen = false;
  while (pos < doc.size()) {
    size_t open = doc.find('<', pos);
    std::string_view text(doc.data() + pos, (open == std::string::npos ? doc.size() : open) - pos);
    if (!check_entities(text)) return "bad text near offset " + std::to_string(pos);
    if (open == std::string::npos) break;
    if (doc.compare(open, 9, "<!DOCTYPE") == 0 || doc.compare(open, 4, "<!--") == 0) {
      pos = doc.find('>', open) + 1;
      continue;
    }
    size_t close = doc.find('>', open);
    if (close == std::string::npos) return "unclosed tag at " + std::to_string(open);
    std::string tag = doc.substr(open + 1, close - open - 1);
    pos = close + 1;
    if (!tag.empty() && tag[0] == '/') {
      std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        return "</" + name + "> closes <" + (stack.empty() ? "" : stack.back()) + ">";
      }
      stack.pop_back();
      continue;
    }
    bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    size_t i = 0;
    while (i < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[i])) || tag[i] == '-'))
      ++i;
    std::string name = tag.substr(0, i);
    if (name.empty()) return "empty tag name at " + std::to_string(open);
    // Attributes: name="value" separated by spaces.
    while (i < tag.size()) {
      while (i < tag.size() && tag[i] == ' ') ++i;
      if (i == tag.size()) break;
      size_t eq = tag.find('=', i);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"') {
        return "unquoted attribute in <" + name + ">";
      }
      size_t end = tag.find('"', eq + 2);
      if (end == std::string::npos) return "unterminated attribute in <" + name + ">";
      if (!check_entities(std::string_view(tag).substr(eq + 2, end - eq - 2))) {
        return "bad attribute value in <" + name + ">";
      }
      i = end + 1;
    }
    if (stack.empty()) {
      if (root_seen) return "second root element <" + name + ">";
      root_seen = true;
    }
    ++counts[name];
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (!root_seen) return "no root element";
  return "";
}

std::vector<nlohmann::json> MoeRows(int n, int experts) {
  std::vector<nlohmann::json> rows;
  for (int step = 1; step <= n; ++step) {
    nlohmann::json load = nlohmann::json::array();
    for (int layer = 0; layer < 2; ++layer) {
      nlohmann::json counts = nlohmann::json::array();
      for (int e = 0; e < experts; ++e) counts.push_back((e == 0 ? 400 / step : 0) + 20 + e);
      load.push_back(counts);
    }
    rows.push_back({{"step", step},
                    {"loss", 6.0 / step + 0.5},
                    {"loss_main", 5.0 / step + 0.4},
                    {"loss_mtp", 1.0 / step + 0.1},
                    {"loss_balance", 0.001},
                    {"lr", 3e-4 * std::min(1.0, step / 10.0)},
                    {"grad_norm", 1.5 / std::sqrt(step)},
                    {"tokens_per_s", 1000 + step},
                    {"elapsed_s", step * 0.5},
                    {"expert_load", load},
                    {"expert_load_layers", {1, 2}}});
  }
  return rows;
}

TEST(Report, FullRunHasEveryChart) {
  std::string html = RenderTrainingReport(MoeRows(50, 8), "tiny <run> & co",
                                          {{"model", "tiny-v3"}, {"params", 123456}});
  std::map<std::string, int> counts;
  EXPECT_EQ(CheckWellFormed(html, counts), "");
  // Loss (log + linear), lr, grad norm, tokens/s, max/mean, two heatmaps.
  EXPECT_EQ(counts["svg"], 8);
  EXPECT_GE(counts["polyline"], 4 * 2 + 4);
  EXPECT_GE(counts["rect"], 2 * 8 * 50);  // heatmap cells
  EXPECT_NE(html.find("tiny &lt;run&gt; &amp; co"), std::string::npos);
  EXPECT_NE(html.find("layer 2"), std::string::npos);
  EXPECT_NE(html.find("tiny-v3"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no assets
  // Step 1, layer 1: expert 0 has 420 tokens, experts 1..7 have 21..27: mean 73.5.
  EXPECT_NE(html.find("expert 0, step 1: 5.71 x mean"), std::string::npos);
  EXPECT_NE(html.find("expert 1, step 1: 0.29 x mean"), std::string::npos);
}

TEST(Report, EmptyAndSingleRow) {
  std::map<std::string, int> counts;
  std::string empty = RenderTrainingReport({}, "empty", nullptr);
  EXPECT_EQ(CheckWellFormed(empty, counts), "");
  EXPECT_NE(empty.find("No metrics"), std::string::npos);

  counts.clear();
  std::string one = RenderTrainingReport(MoeRows(1, 4), "one", nlohmann::json::object());
  EXPECT_EQ(CheckWellFormed(one, counts), "");
  EXPECT_EQ(counts["svg"], 8);
  EXPECT_GE(counts["circle"], 4);  // a single point is drawn as a dot
}

TEST(Report, SurvivesNaNNullsAndMissingKeys) {
  auto rows = MoeRows(20, 4);
  rows[3]["loss"] = std::numeric_limits<double>::quiet_NaN();
  rows[4]["loss"] = nullptr;
  rows[5].erase("lr");
  rows[6]["grad_norm"] = "oops";
  rows[7]["expert_load"] = {{0, 0, 0, 0}, {1, 2}};  // an all-zero layer; a short one
  rows[8].erase("expert_load");
  rows[9]["loss_balance"] = -1.0;  // not drawable on a log axis: a gap there
  rows.push_back({{"step", 21}});
  for (auto& row : rows) row.erase("tokens_per_s");
  std::map<std::string, int> counts;
  std::string html = RenderTrainingReport(rows, "gaps", nullptr);
  EXPECT_EQ(CheckWellFormed(html, counts), "");
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf"), std::string::npos);
  EXPECT_NE(html.find("no data"), std::string::npos);  // tokens/s
  EXPECT_NE(html.find("#cccccc"), std::string::npos);  // heatmap cells without data
}

TEST(Report, DenseModelAndManySteps) {
  std::vector<nlohmann::json> rows;
  for (int i = 0; i < 1000; ++i) rows.push_back({{"step", i}, {"loss", 3.0}});
  std::map<std::string, int> counts;
  std::string html = RenderTrainingReport(rows, "flat", nullptr);
  EXPECT_EQ(CheckWellFormed(html, counts), "");
  EXPECT_NE(html.find("No expert_load"), std::string::npos);
  // Many logged steps are binned into at most 240 heatmap columns.
  auto moe = MoeRows(1000, 4);
  counts.clear();
  html = RenderTrainingReport(moe, "long", nullptr);
  EXPECT_EQ(CheckWellFormed(html, counts), "");
  EXPECT_NE(html.find("5 logged steps per column"), std::string::npos);
  EXPECT_LT(html.size(), 2'000'000u);
}

TEST(ReportSvg, NiceTicks) {
  EXPECT_EQ(report::NiceTicks(0, 10, 5, false), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  auto fractions = report::NiceTicks(0.13, 0.61, 5, false);
  ASSERT_EQ(fractions.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(fractions[i], 0.2 + 0.1 * i, 1e-12);
  auto negative = report::NiceTicks(-3, 3, 6, false);
  EXPECT_EQ(negative.front(), -3);
  EXPECT_EQ(negative.back(), 3);
  EXPECT_EQ(report::NiceTicks(0.01, 100, 6, true), (std::vector<double>{0.01, 0.1, 1, 10, 100}));
  EXPECT_EQ(report::NiceTicks(1, 30, 6, true), (std::vector<double>{1, 2, 5, 10, 20}));
  EXPECT_EQ(report::NiceTicks(1e-8, 1e4, 4, true).size(), 5u);  // every 3rd decade
  EXPECT_TRUE(report::NiceTicks(0, 1, 5, true).empty());
  EXPECT_EQ(report::NiceTicks(5, 5, 5, false), (std::vector<double>{5}));
}

TEST(ReportSvg, TickLabels) {
  EXPECT_EQ(report::TickLabel(0), "0");
  EXPECT_EQ(report::TickLabel(0.001), "0.001");
  EXPECT_EQ(report::TickLabel(2.5e-5), "2.5e-5");
  EXPECT_EQ(report::TickLabel(1500), "1500");
  EXPECT_EQ(report::TickLabel(12000), "12k");
  EXPECT_EQ(report::TickLabel(3e7), "3e7");
  EXPECT_EQ(report::TickLabel(-0.25), "-0.25");
}

}  // namespace
}  // namespace whale
