// Verifiable reasoning tasks: procedural generators with exact verifiers (training.md 7).
//
// A task writes problems (a prompt plus the canonical answer), a worked solution for SFT (the
// completion a model should produce after the chat template's "<think>\n": a scratchpad, then
// "</think>\n\n", then the answer) and a verifier that reads a model's completion.
//
// Splits: every problem has a key (its operands, canonically ordered where order does not change
// the problem). SplitOfKey hashes the key; one eighth of the key space is the test split and the
// rest is train. Generate draws until the drawn problem's key falls in the requested split, so the
// splits are disjoint by construction at every difficulty.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace whale {

// SplitMix64: a small generator whose sequence is the same on every platform and standard
// library (std:: distributions are not), so a seed names the same problems everywhere.
class TaskRng {
 public:
  explicit TaskRng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform integer in [lo, hi] (inclusive), unbiased (rejection sampling).
  int64_t Uniform(int64_t lo, int64_t hi);

 private:
  uint64_t state_;
};

enum class Split { kTrain, kTest };

const char* SplitName(Split split);

// The split a problem key belongs to: kTest for one eighth of keys (by a 64-bit mix hash).
Split SplitOfKey(const std::vector<int64_t>& key);

struct Problem {
  std::string task;    // the task's name()
  std::string prompt;  // the user message
  std::string answer;  // canonical final answer (for countdown: one valid expression)
  int difficulty = 1;
  // Task data the verifier needs: arithmetic {a, op, b} with op a character code; countdown the
  // given numbers; sorting the list as shown.
  std::vector<int64_t> operands;
  int64_t target = 0;  // countdown: the number to reach
};

struct VerifyResult {
  bool correct = false;
  // An answer text was found after the last "</think>" and parsed as the task's answer type.
  bool parsed = false;
  std::string extracted;  // the answer text after the last "</think>", trimmed
  std::string reason;     // why it is wrong (empty when correct)
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual int min_difficulty() const { return 1; }
  virtual int max_difficulty() const = 0;
  // Deterministic given the rng state. Throws Error for a difficulty outside the task's range.
  virtual Problem Generate(Split split, int difficulty, TaskRng& rng) const = 0;
  // The completion after "<think>\n": scratchpad, "</think>\n\n", answer.
  virtual std::string WorkedSolution(const Problem& problem) const = 0;
  virtual VerifyResult Verify(const Problem& problem, std::string_view completion) const = 0;
};

// The text after the last "</think>", trimmed of whitespace; empty (and found=false) without one.
std::string_view ExtractAnswer(std::string_view completion, bool* found);

// The common start of every verifier: extracts the answer into result.extracted; without a
// "</think>" sets result.reason and returns false (the completion then scores as wrong).
bool ExtractAnswerForVerify(std::string_view completion, VerifyResult& result,
                            std::string_view& answer);

// Trims ASCII whitespace at both ends.
std::string_view TrimSpace(std::string_view text);

// Removes presentation around an answer: surrounding "**", a "\\boxed{...}" wrapper, a leading
// "answer:" / "the answer is" / "=" (case-insensitive), a trailing '.'; then trims.
std::string_view StripAnswerDecorations(std::string_view text);

// Parses one integer written leniently: optional sign, digits, optional thousands separators in
// groups of three ("1,234"), a trailing '.' allowed. Returns false for anything else (so "12 or
// 13" never parses as a value).
bool ParseLenientInteger(std::string_view text, int64_t* value);

// Constructs a task by name: "add", "sub", "mul", "countdown", "sort". Throws Error naming the
// known tasks for an unknown name.
std::unique_ptr<Task> MakeTask(std::string_view name);
std::vector<std::string> TaskNames();

}  // namespace whale
