#include "train/task_countdown.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace whale {
namespace {

constexpr int kMaxDraws = 100000;
constexpr size_t kMaxExpressionChars = 256;
constexpr int kMaxDepth = 32;
// Any number larger than this cannot be one of the given numbers; refusing it early keeps the
// exact arithmetic far from overflow.
constexpr int64_t kMaxLiteral = 1000000;

// An expression tree: leaves hold a literal, inner nodes an operator and two children.
struct Node {
  char op = 0;  // 0 for a literal
  int64_t value = 0;
  int left = -1, right = -1;
};

struct Tree {
  std::vector<Node> nodes;
  int root = -1;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  // Returns false with `error` set on any syntax problem.
  bool Parse(Tree& tree, std::string& error) {
    tree_ = &tree;
    tree.root = Expression(0);
    if (tree.root < 0) {
      error = error_;
      return false;
    }
    SkipSpace();
    if (pos_ != text_.size()) {
      error = Cat("unexpected '", text_.substr(pos_, 8), "' at offset ", pos_);
      return false;
    }
    return true;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // The operator at the cursor normalized to + - * /, or 0. Accepts x, × and ÷ as well.
  char PeekOp(size_t* width) {
    SkipSpace();
    if (pos_ >= text_.size()) return 0;
    const std::string_view rest = text_.substr(pos_);
    *width = 1;
    switch (rest[0]) {
      case '+':
      case '-':
      case '*':
      case '/':
        return rest[0];
      case 'x':
      case 'X':
        return '*';
      default:
        break;
    }
    *width = 2;
    if (rest.substr(0, 2) == "\xC3\x97") return '*';  // ×
    if (rest.substr(0, 2) == "\xC3\xB7") return '/';  // ÷
    return 0;
  }

  int Add(Node node) {
    tree_->nodes.push_back(node);
    return static_cast<int>(tree_->nodes.size()) - 1;
  }

  int Expression(int depth) {
    int left = Term(depth);
    while (left >= 0) {
      size_t width = 0;
      const char op = PeekOp(&width);
      if (op != '+' && op != '-') break;
      pos_ += width;
      const int right = Term(depth);
      if (right < 0) return -1;
      left = Add(Node{op, 0, left, right});
    }
    return left;
  }

  int Term(int depth) {
    int left = Factor(depth);
    while (left >= 0) {
      size_t width = 0;
      const char op = PeekOp(&width);
      if (op != '*' && op != '/') break;
      pos_ += width;
      const int right = Factor(depth);
      if (right < 0) return -1;
      left = Add(Node{op, 0, left, right});
    }
    return left;
  }

  int Factor(int depth) {
    SkipSpace();
    if (pos_ >= text_.size()) return Error("expression ends where a number was expected");
    const char c = text_[pos_];
    if (c == '(') {
      if (depth >= kMaxDepth) return Error("parentheses nested too deeply");
      ++pos_;
      const int inner = Expression(depth + 1);
      if (inner < 0) return -1;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ')') return Error("missing ')'");
      ++pos_;
      return inner;
    }
    if (c < '0' || c > '9') {
      return Error(Cat("unexpected '", text_.substr(pos_, 8), "' where a number was expected"));
    }
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + (text_[pos_] - '0');
      if (value > kMaxLiteral) return Error("a number far larger than any given number");
      ++pos_;
    }
    return Add(Node{0, value, -1, -1});
  }

  int Error(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return -1;
  }

  std::string_view text_;
  size_t pos_ = 0;
  Tree* tree_ = nullptr;
  std::string error_;
};

// Exact rational p/q with q > 0, in lowest terms.
struct Rational {
  __int128 num = 0, den = 1;
};

__int128 Gcd(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  while (b != 0) {
    const __int128 t = a % b;
    a = b;
    b = t < 0 ? -t : t;
  }
  return a;
}

Rational Reduce(__int128 num, __int128 den) {
  if (den < 0) num = -num, den = -den;
  const __int128 g = Gcd(num, den);
  return g > 1 ? Rational{num / g, den / g} : Rational{num, den};
}

// Evaluates node `index`; false with `reason` on division by zero or a fractional value.
bool Evaluate(const Tree& tree, int index, Rational& out, std::string& reason) {
  const Node& node = tree.nodes[index];
  if (node.op == 0) {
    out = Rational{node.value, 1};
    return true;
  }
  Rational a, b;
  if (!Evaluate(tree, node.left, a, reason) || !Evaluate(tree, node.right, b, reason)) return false;
  switch (node.op) {
    case '+':
      out = Reduce(a.num * b.den + b.num * a.den, a.den * b.den);
      break;
    case '-':
      out = Reduce(a.num * b.den - b.num * a.den, a.den * b.den);
      break;
    case '*':
      out = Reduce(a.num * b.num, a.den * b.den);
      break;
    default:
      if (b.num == 0) {
        reason = "division by zero";
        return false;
      }
      out = Reduce(a.num * b.den, a.den * b.num);
      break;
  }
  if (out.den != 1) {
    reason = "a division leaves a fraction";
    return false;
  }
  return true;
}

void CollectLeaves(const Tree& tree, int index, std::vector<int64_t>& leaves) {
  const Node& node = tree.nodes[index];
  if (node.op == 0) {
    leaves.push_back(node.value);
    return;
  }
  CollectLeaves(tree, node.left, leaves);
  CollectLeaves(tree, node.right, leaves);
}

int Precedence(char op) {
  return op == '+' || op == '-' ? 1 : op == '*' || op == '/' ? 2 : 3;
}

// Writes node `index` with the fewest parentheses that keep its meaning.
std::string Print(const Tree& tree, int index) {
  const Node& node = tree.nodes[index];
  if (node.op == 0) return std::to_string(node.value);
  const Node& left = tree.nodes[node.left];
  const Node& right = tree.nodes[node.right];
  std::string l = Print(tree, node.left), r = Print(tree, node.right);
  if (Precedence(left.op) < Precedence(node.op)) l = "(" + l + ")";
  // a - (b + c) and a / (b * c) need the parentheses; a + (b + c) does not.
  const bool right_needs =
      Precedence(right.op) < Precedence(node.op) ||
      (Precedence(right.op) == Precedence(node.op) && (node.op == '-' || node.op == '/'));
  if (right_needs) r = "(" + r + ")";
  return Cat(l, " ", node.op, " ", r);
}

// Appends one "a op b = c" line per inner node, children first; returns the node's value.
int64_t WriteSteps(const Tree& tree, int index, std::string& out) {
  const Node& node = tree.nodes[index];
  if (node.op == 0) return node.value;
  const int64_t a = WriteSteps(tree, node.left, out);
  const int64_t b = WriteSteps(tree, node.right, out);
  const int64_t c = node.op == '+'   ? a + b
                    : node.op == '-' ? a - b
                    : node.op == '*' ? a * b
                                     : a / b;
  out += Cat(a, " ", node.op, " ", b, " = ", c, "\n");
  return c;
}

std::string JoinNumbers(const std::vector<int64_t>& numbers) {
  std::string out;
  for (size_t i = 0; i < numbers.size(); ++i) out += Cat(i > 0 ? ", " : "", numbers[i]);
  return out;
}

}  // namespace

CountdownCheck CheckCountdownExpression(std::string_view expression,
                                        const std::vector<int64_t>& numbers, int64_t target) {
  CountdownCheck check;
  expression = TrimSpace(expression);
  if (expression.size() > kMaxExpressionChars) {
    check.reason = Cat("expression longer than ", kMaxExpressionChars, " characters");
    return check;
  }
  // "expr = target": the part after '=' must be the target itself.
  const size_t equals = expression.find('=');
  if (equals != std::string_view::npos) {
    int64_t stated = 0;
    if (!ParseLenientInteger(expression.substr(equals + 1), &stated) || stated != target) {
      check.reason = Cat("the text after '=' is not the target ", target);
      return check;
    }
    expression = TrimSpace(expression.substr(0, equals));
  }
  Tree tree;
  std::string error;
  if (!Parser(expression).Parse(tree, error)) {
    check.reason = Cat("cannot parse '", expression, "': ", error);
    return check;
  }
  std::vector<int64_t> used, given = numbers;
  CollectLeaves(tree, tree.root, used);
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  if (used != given) {
    check.reason = Cat("uses the numbers ", JoinNumbers(used), " but must use ", JoinNumbers(given),
                       " each exactly once");
    return check;
  }
  Rational value;
  if (!Evaluate(tree, tree.root, value, check.reason)) return check;
  check.value = static_cast<int64_t>(value.num);
  if (check.value != target) {
    check.reason = Cat("evaluates to ", check.value, ", not the target ", target);
    return check;
  }
  check.ok = true;
  return check;
}

Problem CountdownTask::Generate(Split split, int difficulty, TaskRng& rng) const {
  if (difficulty < min_difficulty() || difficulty > max_difficulty()) {
    Fail("task countdown: difficulty ", difficulty, " out of range: expected ", min_difficulty(),
         "..", max_difficulty());
  }
  const int count = difficulty <= 2 ? 3 : 4;
  const int64_t max_number = difficulty % 2 == 1 ? 25 : 100;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    std::vector<int64_t> numbers(count);
    for (int64_t& n : numbers) n = rng.Uniform(1, max_number);
    // Combine random pairs of a pool until one tree remains; keep intermediates positive and whole.
    Tree tree;
    std::vector<int> pool;
    std::vector<int64_t> values;
    for (int64_t n : numbers) {
      tree.nodes.push_back(Node{0, n, -1, -1});
      pool.push_back(static_cast<int>(tree.nodes.size()) - 1);
      values.push_back(n);
    }
    bool valid = true;
    while (pool.size() > 1 && valid) {
      const int64_t i = rng.Uniform(0, static_cast<int64_t>(pool.size()) - 1);
      int64_t j = rng.Uniform(0, static_cast<int64_t>(pool.size()) - 2);
      if (j >= i) ++j;
      int64_t a = values[i], b = values[j];
      int left = pool[i], right = pool[j];
      const char op = "+-*/"[rng.Uniform(0, 3)];
      if ((op == '-' || op == '/') && a < b) {
        std::swap(a, b);
        std::swap(left, right);
      }
      int64_t c = 0;
      if (op == '+') c = a + b;
      if (op == '-') c = a - b;
      if (op == '*') c = a * b;
      if (op == '/') c = b > 1 && a % b == 0 ? a / b : 0;
      if (c <= 0 || c > 100000) {
        valid = false;
        break;
      }
      tree.nodes.push_back(Node{op, 0, left, right});
      const int node = static_cast<int>(tree.nodes.size()) - 1;
      // Replace i with the new node and drop j.
      pool[i] = node;
      values[i] = c;
      pool.erase(pool.begin() + j);
      values.erase(values.begin() + j);
    }
    if (!valid || values[0] > 1000) continue;
    tree.root = pool[0];
    const int64_t target = values[0];
    std::vector<int64_t> key = numbers;
    std::sort(key.begin(), key.end());
    key.push_back(target);
    if (SplitOfKey(key) != split) continue;
    Problem problem;
    problem.task = name();
    problem.difficulty = difficulty;
    problem.operands = numbers;
    problem.target = target;
    problem.answer = Print(tree, tree.root);
    problem.prompt = Cat("Using the numbers ", JoinNumbers(numbers),
                         " each exactly once, with + - * / and parentheses, make ", target, ".");
    return problem;
  }
  Fail("task countdown: no ", SplitName(split), " problem of difficulty ", difficulty, " found in ",
       kMaxDraws, " draws");
}

std::string CountdownTask::WorkedSolution(const Problem& problem) const {
  Tree tree;
  std::string error;
  const bool parsed = Parser(problem.answer).Parse(tree, error);
  WHALE_ASSERT(parsed, "countdown answer '", problem.answer, "' does not parse: ", error);
  std::string out =
      Cat("numbers ", JoinNumbers(problem.operands), ", target ", problem.target, "\n");
  const int64_t value = WriteSteps(tree, tree.root, out);
  out += Cat("so ", problem.answer, " = ", value, "\n</think>\n\n", problem.answer);
  return out;
}

VerifyResult CountdownTask::Verify(const Problem& problem, std::string_view completion) const {
  VerifyResult result;
  std::string_view answer;
  if (!ExtractAnswerForVerify(completion, result, answer)) return result;
  const CountdownCheck check =
      CheckCountdownExpression(StripAnswerDecorations(answer), problem.operands, problem.target);
  result.parsed = check.ok || check.reason.rfind("cannot parse", 0) != 0;
  result.correct = check.ok;
  result.reason = check.reason;
  return result;
}

}  // namespace whale
