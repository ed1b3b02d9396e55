#include "train/task_sort.h"

#include <algorithm>

#include "util/error.h"

namespace whale {
namespace {

constexpr int kMaxDraws = 100000;

std::string JoinList(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += Cat(i > 0 ? ", " : "", values[i]);
  return out;
}

}  // namespace

bool ParseIntegerList(std::string_view text, std::vector<int64_t>* values) {
  text = TrimSpace(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = TrimSpace(text.substr(1, text.size() - 2));
  }
  values->clear();
  size_t pos = 0;
  bool need_number = true;  // after the start or a comma, a number must come next
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++pos;
      continue;
    }
    if (c == ',') {
      if (need_number) return false;
      need_number = true;
      ++pos;
      continue;
    }
    size_t end = pos;
    if (text[end] == '-' || text[end] == '+') ++end;
    const size_t digits_start = end;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == digits_start || end - digits_start > 18) return false;
    int64_t value = 0;
    if (!ParseLenientInteger(text.substr(pos, end - pos), &value)) return false;
    values->push_back(value);
    need_number = false;
    pos = end;
  }
  return !values->empty() && !need_number;
}

Problem SortTask::Generate(Split split, int difficulty, TaskRng& rng) const {
  if (difficulty < min_difficulty() || difficulty > max_difficulty()) {
    Fail("task sort: difficulty ", difficulty, " out of range: expected ", min_difficulty(), "..",
         max_difficulty());
  }
  const int count = difficulty + 2;
  const int64_t max_value = difficulty <= 4 ? 99 : 999;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    std::vector<int64_t> values(count);
    for (int64_t& v : values) v = rng.Uniform(0, max_value);
    if (SplitOfKey(values) != split) continue;
    Problem problem;
    problem.task = name();
    problem.difficulty = difficulty;
    problem.operands = values;
    std::vector<int64_t> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    problem.answer = JoinList(sorted);
    problem.prompt = Cat("Sort these numbers in ascending order: ", JoinList(values), ".");
    return problem;
  }
  Fail("task sort: no ", SplitName(split), " problem of difficulty ", difficulty, " found in ",
       kMaxDraws, " draws");
}

std::string SortTask::WorkedSolution(const Problem& problem) const {
  std::vector<int64_t> remaining = problem.operands, sorted;
  std::string out = Cat("list: ", JoinList(remaining), "\n");
  while (!remaining.empty()) {
    const auto smallest = std::min_element(remaining.begin(), remaining.end());
    sorted.push_back(*smallest);
    remaining.erase(smallest);
    out += Cat("smallest ", sorted.back(), ", sorted so far: ", JoinList(sorted),
               remaining.empty() ? ", nothing left" : Cat(", left: ", JoinList(remaining)), "\n");
  }
  out += Cat("</think>\n\n", JoinList(sorted));
  return out;
}

VerifyResult SortTask::Verify(const Problem& problem, std::string_view completion) const {
  VerifyResult result;
  std::string_view answer;
  if (!ExtractAnswerForVerify(completion, result, answer)) return result;
  std::vector<int64_t> values;
  if (!ParseIntegerList(StripAnswerDecorations(answer), &values)) {
    result.reason = Cat("answer '", answer, "' is not a list of integers");
    return result;
  }
  result.parsed = true;
  std::vector<int64_t> expected = problem.operands;
  std::sort(expected.begin(), expected.end());
  if (values != expected) {
    result.reason = Cat("list ", JoinList(values), " != expected ", JoinList(expected));
    return result;
  }
  result.correct = true;
  return result;
}

}  // namespace whale
