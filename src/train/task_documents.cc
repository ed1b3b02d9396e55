#include "train/task_documents.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "util/error.h"

namespace whale {
namespace {

int ParseDifficulty(std::string_view text, std::string_view entry) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    Fail("task mix entry '", entry, "': difficulty '", text, "' is not an integer");
  }
  return value;
}

TaskMixEntry ParseEntry(std::string_view entry) {
  TaskMixEntry result;
  std::string_view rest = TrimSpace(entry);
  if (const size_t star = rest.find('*'); star != std::string_view::npos) {
    const std::string weight_text(TrimSpace(rest.substr(star + 1)));
    char* end = nullptr;
    result.weight = std::strtod(weight_text.c_str(), &end);
    if (weight_text.empty() || end != weight_text.c_str() + weight_text.size() ||
        !std::isfinite(result.weight) || result.weight <= 0) {
      Fail("task mix entry '", entry, "': weight '", weight_text, "' is not a positive number");
    }
    rest = TrimSpace(rest.substr(0, star));
  }
  std::string_view range;
  if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
    range = TrimSpace(rest.substr(colon + 1));
    rest = TrimSpace(rest.substr(0, colon));
  }
  result.task = std::string(rest);
  const std::unique_ptr<Task> task = MakeTask(result.task);  // throws for an unknown name
  result.min_difficulty = task->min_difficulty();
  result.max_difficulty = task->max_difficulty();
  if (!range.empty()) {
    const size_t dash = range.find('-');
    result.min_difficulty = ParseDifficulty(TrimSpace(range.substr(0, dash)), entry);
    result.max_difficulty = dash == std::string_view::npos
                                ? result.min_difficulty
                                : ParseDifficulty(TrimSpace(range.substr(dash + 1)), entry);
  }
  if (result.min_difficulty < task->min_difficulty() ||
      result.max_difficulty > task->max_difficulty() ||
      result.min_difficulty > result.max_difficulty) {
    Fail("task mix entry '", entry, "': difficulty range ", result.min_difficulty, "-",
         result.max_difficulty, " is not within task ", result.task, "'s range ",
         task->min_difficulty(), "-", task->max_difficulty());
  }
  return result;
}

}  // namespace

std::vector<TaskMixEntry> ParseTaskMix(std::string_view spec) {
  std::vector<TaskMixEntry> mix;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string_view entry = TrimSpace(spec.substr(start, comma - start));
    if (entry.empty())
      Fail("task mix '", spec, "': empty entry (expected NAME[:LO[-HI]][*WEIGHT])");
    mix.push_back(ParseEntry(entry));
    start = comma + 1;
  }
  return mix;
}

std::string TaskMixToString(const std::vector<TaskMixEntry>& mix) {
  std::ostringstream out;
  for (size_t i = 0; i < mix.size(); ++i) {
    const TaskMixEntry& e = mix[i];
    if (i > 0) out << ',';
    out << e.task << ':' << e.min_difficulty;
    if (e.max_difficulty != e.min_difficulty) out << '-' << e.max_difficulty;
    if (e.weight != 1) out << '*' << e.weight;
  }
  return out.str();
}

TaskSampler::TaskSampler(std::vector<TaskMixEntry> mix, Split split, uint64_t seed)
    : mix_(std::move(mix)), split_(split), rng_(seed) {
  if (mix_.empty()) Fail("task sampler: the task mix is empty");
  for (const TaskMixEntry& entry : mix_) {
    if (!(entry.weight > 0)) Fail("task sampler: task ", entry.task, " has weight ", entry.weight);
    tasks_.push_back(MakeTask(entry.task));
    total_weight_ += entry.weight;
  }
}

TaskSampler::~TaskSampler() = default;

TaskSampler::Draw TaskSampler::Next() {
  // A 53-bit uniform in [0, 1) from the platform-independent generator picks the entry.
  const double u = static_cast<double>(rng_.Next() >> 11) * 0x1.0p-53 * total_weight_;
  size_t index = 0;
  double acc = mix_[0].weight;
  while (index + 1 < mix_.size() && u >= acc) acc += mix_[++index].weight;
  const TaskMixEntry& entry = mix_[index];
  const int difficulty = static_cast<int>(rng_.Uniform(entry.min_difficulty, entry.max_difficulty));
  Draw draw;
  draw.task = tasks_[index].get();
  draw.problem = draw.task->Generate(split_, difficulty, rng_);
  return draw;
}

const Task& TaskSampler::task(std::string_view name) const {
  for (size_t i = 0; i < mix_.size(); ++i) {
    if (mix_[i].task == name) return *tasks_[i];
  }
  Fail("task sampler: task '", name, "' is not in the mix ", TaskMixToString(mix_));
}

TaskFormatter::TaskFormatter(const Tokenizer& tokenizer, const ChatTemplate& chat_template)
    : tokenizer_(tokenizer), chat_template_(chat_template) {
  const std::optional<int32_t> eos = tokenizer.eos_id();
  if (!eos)
    Fail("task formatter: the tokenizer has no EOS token (tokenizer_config.json eos_token)");
  eos_id_ = *eos;
}

std::string TaskFormatter::PromptText(const Problem& problem) const {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "user"}, {"content", problem.prompt}});
  return chat_template_.Render(messages, /*add_generation_prompt=*/true);
}

std::vector<int32_t> TaskFormatter::PromptTokens(const Problem& problem) const {
  // The template writes BOS itself; add_special_tokens would add a second one.
  return tokenizer_.Encode(PromptText(problem), /*add_special_tokens=*/false);
}

Document TaskFormatter::WorkedDocument(const Task& task, const Problem& problem,
                                       bool assistant_only) const {
  Document doc;
  doc.tokens = PromptTokens(problem);
  const size_t prompt_length = doc.tokens.size();
  const std::vector<int32_t> completion =
      tokenizer_.Encode(task.WorkedSolution(problem), /*add_special_tokens=*/false);
  doc.tokens.insert(doc.tokens.end(), completion.begin(), completion.end());
  doc.tokens.push_back(eos_id_);
  if (assistant_only) {
    doc.loss_mask.assign(doc.tokens.size(), 0);
    std::fill(doc.loss_mask.begin() + static_cast<std::ptrdiff_t>(prompt_length),
              doc.loss_mask.end(), 1);
  }
  return doc;
}

DocumentGenerator TaskDocumentGenerator(TaskSampler& sampler, const TaskFormatter& formatter,
                                        bool assistant_only) {
  return [&sampler, &formatter, assistant_only](Document& doc) {
    const TaskSampler::Draw draw = sampler.Next();
    doc = formatter.WorkedDocument(*draw.task, draw.problem, assistant_only);
  };
}

}  // namespace whale
