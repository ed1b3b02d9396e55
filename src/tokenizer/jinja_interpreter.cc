#include "tokenizer/jinja_interpreter.h"

#include <cmath>

#include "tokenizer/jinja_builtins.h"

namespace whale::jinja {

namespace {

[[noreturn]] void UndefinedUse(const Value& v) {
  if (!v.unsafe_error().empty()) throw TemplateError(v.unsafe_error());
  ThrowPython("UndefinedError",
              v.undefined_hint().empty() ? "value is undefined" : v.undefined_hint());
}

[[noreturn]] void UnsupportedOperands(std::string_view op, const Value& a, const Value& b) {
  ThrowPython("TypeError", Cat("unsupported operand type(s) for ", op, ": '", a.PythonTypeName(),
                               "' and '", b.PythonTypeName(), "'"));
}

Value Repeat(const Value& sequence, int64_t times) {
  if (sequence.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += sequence.AsString();
    return Value(out);
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) {
    out.insert(out.end(), sequence.AsList().begin(), sequence.AsList().end());
  }
  return sequence.kind() == Value::Kind::kTuple ? Value::Tuple(std::move(out))
                                                : Value::List(std::move(out));
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Value Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) UndefinedUse(a);
  if (b.is_undefined()) UndefinedUse(b);
  bool numbers = a.is_number() && b.is_number();
  bool floats = numbers && (a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat);
  if (op == "+") {
    if (numbers) return floats ? Value(a.AsDouble() + b.AsDouble()) : Value(a.AsInt() + b.AsInt());
    if (a.is_string() && b.is_string()) return Value(a.AsString() + b.AsString());
    if (a.is_sequence() && a.kind() == b.kind()) {
      ValueList out = a.AsList();
      out.insert(out.end(), b.AsList().begin(), b.AsList().end());
      return a.kind() == Value::Kind::kTuple ? Value::Tuple(std::move(out))
                                             : Value::List(std::move(out));
    }
    if (a.is_string()) {
      ThrowPython("TypeError",
                  Cat("can only concatenate str (not \"", b.PythonTypeName(), "\") to str"));
    }
    if (a.kind() == Value::Kind::kList) {
      ThrowPython("TypeError",
                  Cat("can only concatenate list (not \"", b.PythonTypeName(), "\") to list"));
    }
    UnsupportedOperands("+", a, b);
  }
  if (op == "-") {
    if (numbers) return floats ? Value(a.AsDouble() - b.AsDouble()) : Value(a.AsInt() - b.AsInt());
    UnsupportedOperands("-", a, b);
  }
  if (op == "*") {
    if (numbers) return floats ? Value(a.AsDouble() * b.AsDouble()) : Value(a.AsInt() * b.AsInt());
    if ((a.is_string() || a.is_sequence()) && b.is_integer()) return Repeat(a, b.AsInt());
    if (a.is_integer() && (b.is_string() || b.is_sequence())) return Repeat(b, a.AsInt());
    UnsupportedOperands("*", a, b);
  }
  if (op == "/") {
    if (!numbers) UnsupportedOperands("/", a, b);
    if (b.AsDouble() == 0) ThrowPython("ZeroDivisionError", "division by zero");
    return Value(a.AsDouble() / b.AsDouble());
  }
  if (op == "//") {
    if (!numbers) UnsupportedOperands("//", a, b);
    if (b.AsDouble() == 0) ThrowPython("ZeroDivisionError", "integer division or modulo by zero");
    if (floats) return Value(std::floor(a.AsDouble() / b.AsDouble()));
    return Value(FloorDiv(a.AsInt(), b.AsInt()));
  }
  if (op == "%") {
    if (a.is_string()) {
      CallArgs args{{b}, {}};
      return CallFilter("format", a, args);
    }
    if (!numbers) UnsupportedOperands("%", a, b);
    if (b.AsDouble() == 0) ThrowPython("ZeroDivisionError", "integer division or modulo by zero");
    if (floats) {
      double r = std::fmod(a.AsDouble(), b.AsDouble());
      if (r != 0 && ((r < 0) != (b.AsDouble() < 0))) r += b.AsDouble();
      return Value(r);
    }
    return Value(a.AsInt() - FloorDiv(a.AsInt(), b.AsInt()) * b.AsInt());
  }
  if (op == "**") {
    if (!numbers) UnsupportedOperands("** or pow()", a, b);
    if (!floats && b.AsInt() >= 0) {
      int64_t result = 1;
      for (int64_t i = 0; i < b.AsInt(); ++i) result *= a.AsInt();
      return Value(result);
    }
    return Value(std::pow(a.AsDouble(), b.AsDouble()));
  }
  ThrowPython("TypeError", Cat("unknown operator ", op));
}

bool Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        if (item.is_undefined()) UndefinedUse(item);
        ThrowPython("TypeError", Cat("'in <string>' requires string as left operand, not ",
                                     item.PythonTypeName()));
      }
      return container.AsString().find(item.AsString()) != std::string::npos;
    case Value::Kind::kDict:
      return container.AsDict().Find(item) != nullptr;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      for (const Value& v : container.AsList()) {
        if (v.Equals(item)) return true;
      }
      return false;
    case Value::Kind::kUndefined:
      return false;  // iterating an Undefined yields nothing
    default:
      ThrowPython("TypeError",
                  Cat("argument of type '", container.PythonTypeName(), "' is not iterable"));
  }
}

bool CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a.Equals(b);
  if (op == "!=") return !a.Equals(b);
  if (op == "in") return Contains(b, a);
  if (op == "notin") return !Contains(b, a);
  if (a.is_undefined()) UndefinedUse(a);
  if (b.is_undefined()) UndefinedUse(b);
  if (op == "<") return a.Less(b);
  if (op == "<=") return a.Less(b) || a.Equals(b);
  if (op == ">") return b.Less(a);
  return b.Less(a) || a.Equals(b);  // >=
}

class Interpreter {
 public:
  Interpreter(const Dict& globals, const Dict& variables) {
    frames_.push_back(ToFrame(globals));
    frames_.push_back(ToFrame(variables));
    frames_.emplace_back();  // template top level
  }

  std::string Run(const StmtList& program) {
    std::string out;
    out_ = &out;
    Exec(program);
    return out;
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  using Frame = std::vector<std::pair<std::string, Value>>;

  static Frame ToFrame(const Dict& dict) {
    Frame frame;
    for (const auto& [k, v] : dict.items) frame.emplace_back(k.Str(), v);
    return frame;
  }

  Value Lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > 0;) {
      for (const auto& [k, v] : frames_[i]) {
        if (k == name) return v;
      }
    }
    return Value::Undefined(Cat("'", name, "' is undefined"));
  }

  void SetVariable(const std::string& name, Value value) {
    Frame& frame = frames_.back();
    for (auto& [k, v] : frame) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    frame.emplace_back(name, std::move(value));
  }

  void Assign(const Target& target, const Value& value) {
    if (!target.attribute.empty()) {
      Value object = Lookup(target.names[0]);
      if (object.kind() != Value::Kind::kNamespace || object.type_name() != "Namespace") {
        ThrowPython("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      }
      object.MutableDict().Set(Value(target.attribute), value);
      return;
    }
    if (!target.is_tuple) {
      SetVariable(target.names[0], value);
      return;
    }
    if (value.is_undefined()) UndefinedUse(value);
    ValueList items = value.Iterate();
    if (items.size() != target.names.size()) {
      ThrowPython("ValueError", Cat(items.size() < target.names.size() ? "not enough" : "too many",
                                    " values to unpack (expected ", target.names.size(), ", got ",
                                    items.size(), ")"));
    }
    for (size_t i = 0; i < items.size(); ++i) SetVariable(target.names[i], items[i]);
  }

  std::string Capture(const StmtList& body) {
    std::string captured;
    struct Restore {
      std::string*& target;
      std::string* saved;
      ~Restore() { target = saved; }
    } restore{out_, out_};
    out_ = &captured;
    Exec(body);
    return captured;
  }

  Value ApplyFilters(const std::vector<ExprPtr>& filters, Value value) {
    for (const auto& filter : filters) {
      CallArgs args = EvalArgs(*filter, 1);
      value = Located(*filter, [&] { return CallFilter(filter->name, value, args); });
    }
    return value;
  }

  Flow Exec(const StmtList& body) {
    for (const auto& stmt : body) {
      Flow flow = ExecOne(*stmt);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow ExecOne(const Stmt& s) {
    switch (s.kind) {
      case Stmt::Kind::kOutput:
        *out_ += s.text;
        return Flow::kNormal;
      case Stmt::Kind::kPrint:
        *out_ += Eval(*s.expr).Str();
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [condition, body] : s.branches) {
          if (Eval(*condition).Truthy()) return Exec(body);
        }
        return Exec(s.else_body);
      case Stmt::Kind::kFor:
        return ExecFor(s);
      case Stmt::Kind::kSet: {
        Value value = Eval(*s.expr);
        Located(*s.expr, [&] {
          Assign(s.target, value);
          return Value();
        });
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetBlock: {
        Value value = ApplyFilters(s.filters, Value(Capture(s.body)));
        SetVariable(s.target.names[0], value);
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock:
        *out_ += ApplyFilters(s.filters, Value(Capture(s.body))).Str();
        return Flow::kNormal;
      case Stmt::Kind::kMacro:
        SetVariable(s.name, MakeMacro(s));
        return Flow::kNormal;
      case Stmt::Kind::kWith: {
        std::vector<Value> values;
        for (const auto& [target, expr] : s.assignments) values.push_back(Eval(*expr));
        frames_.emplace_back();
        for (size_t i = 0; i < values.size(); ++i) Assign(s.assignments[i].first, values[i]);
        Flow flow = Exec(s.body);
        frames_.pop_back();
        return flow;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kBody:
        return Exec(s.body);
    }
    return Flow::kNormal;
  }

  Flow ExecFor(const Stmt& s) {
    Value iterable = Eval(*s.expr);
    ValueList items = Located(*s.expr, [&] {
                        if (iterable.is_none() || iterable.is_number() ||
                            iterable.kind() == Value::Kind::kFunction ||
                            iterable.kind() == Value::Kind::kNamespace) {
                          ThrowPython("TypeError", Cat("'", iterable.PythonTypeName(),
                                                       "' object is not iterable"));
                        }
                        return Value::List(iterable.Iterate());
                      }).AsList();
    if (s.condition) {
      ValueList kept;
      for (const Value& item : items) {
        frames_.emplace_back();
        Assign(s.target, item);
        bool keep = Eval(*s.condition).Truthy();
        frames_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return Exec(s.else_body);
    auto length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      Dict loop;
      loop.Set(Value("index"), Value(i + 1));
      loop.Set(Value("index0"), Value(i));
      loop.Set(Value("revindex"), Value(length - i));
      loop.Set(Value("revindex0"), Value(length - i - 1));
      loop.Set(Value("first"), Value(i == 0));
      loop.Set(Value("last"), Value(i == length - 1));
      loop.Set(Value("length"), Value(length));
      loop.Set(Value("depth"), Value(int64_t{1}));
      loop.Set(Value("depth0"), Value(int64_t{0}));
      loop.Set(Value("previtem"), i > 0 ? items[static_cast<size_t>(i - 1)]
                                        : Value::Undefined("there is no previous item"));
      loop.Set(Value("nextitem"), i + 1 < length ? items[static_cast<size_t>(i + 1)]
                                                 : Value::Undefined("there is no next item"));
      loop.Set(Value("cycle"), Value::MakeFunction("cycle", [i](CallArgs& args) {
                 if (args.positional.empty())
                   ThrowPython("TypeError", "no items for cycling given");
                 return args.positional[static_cast<size_t>(i) % args.positional.size()];
               }));
      frames_.emplace_back();
      SetVariable("loop", Value::MakeNamespace(std::move(loop), "LoopContext"));
      Assign(s.target, items[static_cast<size_t>(i)]);
      Flow flow = Exec(s.body);
      frames_.pop_back();
      if (flow == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value MakeMacro(const Stmt& s) {
    const Stmt* macro = &s;
    return Value::MakeFunction(s.name, [this, macro](CallArgs& args) {
      std::vector<Param> params;
      for (const auto& [name, fallback] : macro->params) {
        params.push_back({name, fallback ? std::optional<Value>(Eval(*fallback))
                                         : std::optional<Value>(Value::Undefined(
                                               Cat("parameter '", name, "' was not provided")))});
      }
      std::vector<Value> values = BindArgs(args, macro->name, params);
      // A macro calling itself without end would exhaust the stack; Python stops at its
      // recursion limit.
      if (macro_depth_ >= kMaxMacroDepth)
        ThrowPython("RecursionError", "maximum recursion depth exceeded");
      ++macro_depth_;
      std::vector<Frame> saved = std::move(frames_);
      frames_ = {saved[0], saved[1], saved[2], Frame{}};
      for (size_t i = 0; i < values.size(); ++i) SetVariable(macro->params[i].first, values[i]);
      std::string output;
      try {
        output = Capture(macro->body);
      } catch (...) {
        frames_ = std::move(saved);
        --macro_depth_;
        throw;
      }
      frames_ = std::move(saved);
      --macro_depth_;
      return Value(output);
    });
  }

  // Runs `fn`, adding the position of `at` to a TemplateError that has none yet.
  template <typename Fn>
  Value Located(const Expr& at, Fn&& fn) {
    try {
      return fn();
    } catch (const TemplateRaised&) {
      throw;
    } catch (const TemplateError& e) {
      if (std::string_view(e.what()).starts_with("template ")) throw;
      throw TemplateError(
          Cat("template error at line ", at.line, ", column ", at.column, ": ", e.what()));
    }
  }

  CallArgs EvalArgs(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.children.size(); ++i)
      args.positional.push_back(Eval(*e.children[i]));
    for (const auto& [key, value] : e.keywords) args.keyword.emplace_back(key, Eval(*value));
    return args;
  }

  Value Eval(const Expr& e) {
    return Located(e, [&] { return EvalUnlocated(e); });
  }

  Value EvalUnlocated(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        ValueList items;
        for (const auto& child : e.children) items.push_back(Eval(*child));
        return e.kind == Expr::Kind::kList ? Value::List(std::move(items))
                                           : Value::Tuple(std::move(items));
      }
      case Expr::Kind::kDict: {
        Dict dict;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          dict.Set(Eval(*e.children[i]), Eval(*e.children[i + 1]));
        }
        return Value::MakeDict(std::move(dict));
      }
      case Expr::Kind::kGetAttr:
        return GetAttribute(Eval(*e.children[0]), e.name);
      case Expr::Kind::kGetItem: {
        Value object = Eval(*e.children[0]);
        return GetItem(object, Eval(*e.children[1]));
      }
      case Expr::Kind::kSlice: {
        Value object = Eval(*e.children[0]);
        auto bound = [&](size_t i) { return e.children[i] ? Eval(*e.children[i]) : Value::None(); };
        Value start = bound(1), stop = bound(2), step = bound(3);
        return Slice(object, start, stop, step);
      }
      case Expr::Kind::kCall: {
        Value callee = Eval(*e.children[0]);
        CallArgs args = EvalArgs(e, 1);
        if (callee.is_undefined()) UndefinedUse(callee);
        if (callee.kind() != Value::Kind::kFunction) {
          ThrowPython("TypeError", Cat("'", callee.PythonTypeName(), "' object is not callable"));
        }
        return callee.AsFunction().call(args);
      }
      case Expr::Kind::kFilter: {
        Value value = Eval(*e.children[0]);
        CallArgs args = EvalArgs(e, 1);
        return CallFilter(e.name, value, args);
      }
      case Expr::Kind::kTest: {
        Value value = Eval(*e.children[0]);
        CallArgs args = EvalArgs(e, 1);
        return Value(CallTest(e.name, value, args) != e.negated);
      }
      case Expr::Kind::kNegate:
      case Expr::Kind::kPlus: {
        Value v = Eval(*e.children[0]);
        if (v.is_undefined()) UndefinedUse(v);
        if (!v.is_number()) {
          ThrowPython("TypeError",
                      Cat("bad operand type for unary ", e.kind == Expr::Kind::kNegate ? "-" : "+",
                          ": '", v.PythonTypeName(), "'"));
        }
        if (e.kind == Expr::Kind::kPlus)
          return v.kind() == Value::Kind::kBool ? Value(v.AsInt()) : v;
        return v.kind() == Value::Kind::kFloat ? Value(-v.AsDouble()) : Value(-v.AsInt());
      }
      case Expr::Kind::kNot:
        return Value(!Eval(*e.children[0]).Truthy());
      case Expr::Kind::kBinary: {
        Value a = Eval(*e.children[0]);
        Value b = Eval(*e.children[1]);
        return Arithmetic(e.name, a, b);
      }
      case Expr::Kind::kCompare: {
        Value left = Eval(*e.children[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = Eval(*e.children[i + 1]);
          if (!CompareOp(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::kAnd: {
        Value a = Eval(*e.children[0]);
        return a.Truthy() ? Eval(*e.children[1]) : a;
      }
      case Expr::Kind::kOr: {
        Value a = Eval(*e.children[0]);
        return a.Truthy() ? a : Eval(*e.children[1]);
      }
      case Expr::Kind::kCondition:
        if (Eval(*e.children[0]).Truthy()) return Eval(*e.children[1]);
        if (e.children[2]) return Eval(*e.children[2]);
        return Value::Undefined(
            "the inline if-expression evaluated to false and no else section was defined");
      case Expr::Kind::kConcat: {
        std::string out;
        for (const auto& child : e.children) out += Eval(*child).Str();
        return Value(out);
      }
    }
    return Value();
  }

  static constexpr int kMaxMacroDepth = 100;
  std::vector<Frame> frames_;
  std::string* out_ = nullptr;
  int macro_depth_ = 0;
};

}  // namespace

std::string Render(const StmtList& program, const Dict& globals, const Dict& variables) {
  return Interpreter(globals, variables).Run(program);
}

}  // namespace whale::jinja
