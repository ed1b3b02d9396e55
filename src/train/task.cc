#include "train/task.h"

#include <cctype>
#include <limits>

#include "train/task_arithmetic.h"
#include "train/task_countdown.h"
#include "train/task_sort.h"
#include "util/error.h"
#include "util/split_mix.h"

namespace whale {

uint64_t TaskRng::Next() {
  return SplitMix64Next(state_);
}

int64_t TaskRng::Uniform(int64_t lo, int64_t hi) {
  WHALE_ASSERT(lo <= hi, "Uniform(", lo, ", ", hi, ")");
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
  if (span == 0) return static_cast<int64_t>(Next());  // the full 64-bit range
  // Reject the top partial block so every value is equally likely.
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % span;
  uint64_t draw = Next();
  while (draw >= limit) draw = Next();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + draw % span);
}

const char* SplitName(Split split) {
  return split == Split::kTrain ? "train" : "test";
}

Split SplitOfKey(const std::vector<int64_t>& key) {
  // A fixed salt so the split does not coincide with any TaskRng stream.
  uint64_t h = 0x243F6A8885A308D3ull ^ key.size();
  for (int64_t k : key) {
    h ^= static_cast<uint64_t>(k) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
  }
  return (h & 7) == 0 ? Split::kTest : Split::kTrain;
}

std::string_view TrimSpace(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

std::string_view ExtractAnswer(std::string_view completion, bool* found) {
  constexpr std::string_view kClose = "</think>";
  const size_t at = completion.rfind(kClose);
  if (at == std::string_view::npos) {
    *found = false;
    return {};
  }
  *found = true;
  return TrimSpace(completion.substr(at + kClose.size()));
}

bool ExtractAnswerForVerify(std::string_view completion, VerifyResult& result,
                            std::string_view& answer) {
  bool found = false;
  answer = ExtractAnswer(completion, &found);
  result.extracted = std::string(answer);
  if (!found) result.reason = "no </think> before the answer";
  return found;
}

namespace {

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view StripAnswerDecorations(std::string_view text) {
  text = TrimSpace(text);
  for (std::string_view prefix : {"the answer is", "answer:", "answer", "="}) {
    if (StartsWithNoCase(text, prefix)) {
      text = TrimSpace(text.substr(prefix.size()));
      break;
    }
  }
  if (!text.empty() && text.back() == '.') text = TrimSpace(text.substr(0, text.size() - 1));
  if (text.size() >= 4 && text.substr(0, 2) == "**" && text.substr(text.size() - 2) == "**") {
    text = TrimSpace(text.substr(2, text.size() - 4));
  }
  constexpr std::string_view kBoxed = "\\boxed{";
  if (text.substr(0, kBoxed.size()) == kBoxed && text.back() == '}') {
    text = TrimSpace(text.substr(kBoxed.size(), text.size() - kBoxed.size() - 1));
  }
  return text;
}

bool ParseLenientInteger(std::string_view text, int64_t* value) {
  text = TrimSpace(text);
  if (!text.empty() && text.back() == '.') text = TrimSpace(text.substr(0, text.size() - 1));
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return false;
  // Digits with optional ',' separators: all groups after the first must have exactly three.
  const bool grouped = text.find(',') != std::string_view::npos;
  int64_t result = 0;
  int group = 0;
  bool first_group = true;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ',') {
      if (group == 0 || (first_group && group > 3) || (!first_group && group != 3)) return false;
      first_group = false;
      group = 0;
      continue;
    }
    if (c < '0' || c > '9') return false;
    if (result > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return false;
    result = result * 10 + (c - '0');
    ++group;
  }
  if (grouped && (group != 3)) return false;
  *value = negative ? -result : result;
  return true;
}

std::vector<std::string> TaskNames() {
  return {"add", "sub", "mul", "countdown", "sort"};
}

std::unique_ptr<Task> MakeTask(std::string_view name) {
  if (name == "add") return std::make_unique<ArithmeticTask>(ArithmeticOp::kAdd);
  if (name == "sub") return std::make_unique<ArithmeticTask>(ArithmeticOp::kSub);
  if (name == "mul") return std::make_unique<ArithmeticTask>(ArithmeticOp::kMul);
  if (name == "countdown") return std::make_unique<CountdownTask>();
  if (name == "sort") return std::make_unique<SortTask>();
  std::string known;
  for (const std::string& n : TaskNames()) known += (known.empty() ? "" : ", ") + n;
  Fail("unknown task '", name, "': expected one of ", known);
}

}  // namespace whale
