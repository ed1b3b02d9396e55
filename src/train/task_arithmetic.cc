#include "train/task_arithmetic.h"

#include <algorithm>

#include "util/error.h"

namespace whale {
namespace {

constexpr int kMaxDraws = 100000;

char OpChar(ArithmeticOp op) {
  switch (op) {
    case ArithmeticOp::kAdd:
      return '+';
    case ArithmeticOp::kSub:
      return '-';
    case ArithmeticOp::kMul:
      return '*';
  }
  return '?';
}

// Decimal digits of a non-negative value, least-significant first ("0" has one digit).
std::vector<int> DigitsLsbFirst(int64_t value) {
  std::vector<int> digits;
  do {
    digits.push_back(static_cast<int>(value % 10));
    value /= 10;
  } while (value > 0);
  return digits;
}

std::string JoinDigits(const std::vector<int>& digits) {
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0) out += ' ';
    out += static_cast<char>('0' + digits[i]);
  }
  return out;
}

int64_t DrawWithDigits(int n_digits, TaskRng& rng) {
  int64_t lo = 1;
  for (int i = 1; i < n_digits; ++i) lo *= 10;
  if (n_digits == 1) return rng.Uniform(0, 9);
  return rng.Uniform(lo, lo * 10 - 1);
}

// Appends the column-by-column addition of a + b (both >= 0) and returns the sum.
int64_t WriteAddition(int64_t a, int64_t b, std::string& out) {
  const std::vector<int> da = DigitsLsbFirst(a), db = DigitsLsbFirst(b);
  out += Cat("add ", a, " + ", b, "\ndigits from the right: ", JoinDigits(da), " and ",
             JoinDigits(db), "\n");
  std::vector<int> result;
  int carry = 0;
  for (size_t i = 0; i < std::max(da.size(), db.size()); ++i) {
    const int x = i < da.size() ? da[i] : 0, y = i < db.size() ? db[i] : 0;
    const int s = x + y + carry;
    out += Cat(x, "+", y, "+", carry, "=", s, ", digit ", s % 10, " carry ", s / 10, "\n");
    result.push_back(s % 10);
    carry = s / 10;
  }
  if (carry > 0) {
    out += Cat("last carry ", carry, ", digit ", carry, "\n");
    result.push_back(carry);
  }
  out += Cat("digits from the right: ", JoinDigits(result), "\n");
  return a + b;
}

// Appends the column-by-column subtraction a - b (a >= b >= 0) and returns the difference.
int64_t WriteSubtraction(int64_t a, int64_t b, std::string& out) {
  const std::vector<int> da = DigitsLsbFirst(a), db = DigitsLsbFirst(b);
  out += Cat("subtract ", a, " - ", b, "\ndigits from the right: ", JoinDigits(da), " and ",
             JoinDigits(db), "\n");
  std::vector<int> result;
  int borrow = 0;
  for (size_t i = 0; i < da.size(); ++i) {
    const int x = da[i], y = i < db.size() ? db[i] : 0;
    const int d = x - y - borrow;
    if (d < 0) {
      out +=
          Cat(x, "-", y, "-", borrow, "=", d, ", +10=", d + 10, ", digit ", d + 10, " borrow 1\n");
      result.push_back(d + 10);
      borrow = 1;
    } else {
      out += Cat(x, "-", y, "-", borrow, "=", d, ", digit ", d, " borrow 0\n");
      result.push_back(d);
      borrow = 0;
    }
  }
  out += Cat("digits from the right: ", JoinDigits(result), "\n");
  return a - b;
}

// Appends the long multiplication a * b (both >= 0) and returns the product.
int64_t WriteMultiplication(int64_t a, int64_t b, std::string& out) {
  const std::vector<int> da = DigitsLsbFirst(a), db = DigitsLsbFirst(b);
  out += Cat("multiply ", a, " * ", b, "\ndigits from the right: ", JoinDigits(da), " and ",
             JoinDigits(db), "\n");
  int64_t sum = 0, place = 1;
  for (size_t j = 0; j < db.size(); ++j, place *= 10) {
    const int y = db[j];
    out += Cat("times ", y, " (place ", j, "):\n");
    std::vector<int> digits;
    int carry = 0;
    for (int x : da) {
      const int p = x * y + carry;
      out += Cat(x, "*", y, "+", carry, "=", p, ", digit ", p % 10, " carry ", p / 10, "\n");
      digits.push_back(p % 10);
      carry = p / 10;
    }
    if (carry > 0) {
      out += Cat("last carry ", carry, ", digit ", carry, "\n");
      digits.push_back(carry);
    }
    const int64_t partial = a * y * place;
    out += Cat("digits from the right: ", JoinDigits(digits), "\npartial ", a * y, " shifted ", j,
               " = ", partial, "\n");
    if (j == 0) {
      sum = partial;
    } else {
      sum = WriteAddition(sum, partial, out);
      out += Cat("running sum ", sum, "\n");
    }
  }
  return sum;
}

}  // namespace

std::string ArithmeticTask::name() const {
  switch (op_) {
    case ArithmeticOp::kAdd:
      return "add";
    case ArithmeticOp::kSub:
      return "sub";
    case ArithmeticOp::kMul:
      return "mul";
  }
  return "?";
}

Problem ArithmeticTask::Generate(Split split, int difficulty, TaskRng& rng) const {
  if (difficulty < min_difficulty() || difficulty > max_difficulty()) {
    Fail("task ", name(), ": difficulty ", difficulty, " out of range: expected ", min_difficulty(),
         "..", max_difficulty());
  }
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    int64_t a = DrawWithDigits(difficulty, rng);
    int64_t b = DrawWithDigits(static_cast<int>(rng.Uniform(1, difficulty)), rng);
    if (op_ == ArithmeticOp::kSub && a < b) std::swap(a, b);
    // a + b and a * b are the same problem as b + a: the key orders commutative operands.
    const bool commutative = op_ != ArithmeticOp::kSub;
    const std::vector<int64_t> key = {OpChar(op_), commutative ? std::min(a, b) : a,
                                      commutative ? std::max(a, b) : b};
    if (SplitOfKey(key) != split) continue;
    Problem problem;
    problem.task = name();
    problem.difficulty = difficulty;
    problem.operands = {a, OpChar(op_), b};
    problem.prompt = Cat("What is ", a, " ", OpChar(op_), " ", b, "?");
    const int64_t result = op_ == ArithmeticOp::kAdd   ? a + b
                           : op_ == ArithmeticOp::kSub ? a - b
                                                       : a * b;
    problem.answer = std::to_string(result);
    return problem;
  }
  Fail("task ", name(), ": no ", SplitName(split), " problem of difficulty ", difficulty,
       " found in ", kMaxDraws, " draws");
}

std::string ArithmeticTask::WorkedSolution(const Problem& problem) const {
  WHALE_ASSERT(problem.operands.size() == 3, "arithmetic problem without operands");
  const int64_t a = problem.operands[0], b = problem.operands[2];
  std::string out;
  int64_t result = 0;
  switch (op_) {
    case ArithmeticOp::kAdd:
      result = WriteAddition(a, b, out);
      break;
    case ArithmeticOp::kSub:
      result = WriteSubtraction(a, b, out);
      break;
    case ArithmeticOp::kMul:
      result = WriteMultiplication(a, b, out);
      break;
  }
  out += Cat(a, " ", OpChar(op_), " ", b, " = ", result, "\n</think>\n\n", result);
  return out;
}

VerifyResult ArithmeticTask::Verify(const Problem& problem, std::string_view completion) const {
  VerifyResult result;
  std::string_view answer;
  if (!ExtractAnswerForVerify(completion, result, answer)) return result;
  int64_t value = 0;
  if (!ParseLenientInteger(StripAnswerDecorations(answer), &value)) {
    result.reason = Cat("answer '", answer, "' is not one integer");
    return result;
  }
  result.parsed = true;
  if (std::to_string(value) != problem.answer) {
    result.reason = Cat("answer ", value, " != expected ", problem.answer);
    return result;
  }
  result.correct = true;
  return result;
}

}  // namespace whale
