#include "tokenizer/jinja_parser.h"

#include <cstdlib>
#include <initializer_list>

#include "tokenizer/jinja_lexer.h"

namespace whale::jinja {

namespace {

using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  StmtList ParseTemplate() {
    StmtList body = ParseStatements({});
    if (Current().type != T::kEnd) Fail(Current(), "unexpected token");
    return body;
  }

 private:
  // ---- token helpers
  const Token& Current() const { return tokens_[pos_]; }
  const Token& Peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Advance() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool IsOp(std::string_view op) const {
    return Current().type == T::kOperator && Current().value == op;
  }
  bool IsName(std::string_view name) const {
    return Current().type == T::kName && Current().value == name;
  }
  static std::string Describe(const Token& token) {
    switch (token.type) {
      case T::kEnd:
        return "end of template";
      case T::kBlockEnd:
        return "'%}'";
      case T::kVariableEnd:
        return "'}}'";
      case T::kBlockBegin:
        return "'{%'";
      case T::kVariableBegin:
        return "'{{'";
      case T::kData:
        return "template text";
      case T::kString:
        return "string";
      default:
        return Cat("'", token.value, "'");
    }
  }
  [[noreturn]] static void Fail(const Token& at, std::string_view message) {
    throw TemplateError(Cat("template syntax error at line ", at.line, ", column ", at.column, ": ",
                            message, " (found ", Describe(at), ")"));
  }
  void ExpectOp(std::string_view op) {
    if (!IsOp(op)) Fail(Current(), Cat("expected '", op, "'"));
    Advance();
  }
  void ExpectName(std::string_view name) {
    if (!IsName(name)) Fail(Current(), Cat("expected '", name, "'"));
    Advance();
  }
  std::string ExpectIdentifier() {
    if (Current().type != T::kName) Fail(Current(), "expected a name");
    return Advance().value;
  }
  void ExpectBlockEnd() {
    if (Current().type != T::kBlockEnd) Fail(Current(), "expected end of statement block");
    Advance();
  }

  ExprPtr Node(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements

  // Parses until a block whose first name is in `end_names` (left unconsumed: Current() is that
  // name, just after '{%').
  StmtList ParseStatements(std::initializer_list<std::string_view> end_names) {
    StmtList body;
    while (true) {
      const Token& token = Current();
      if (token.type == T::kEnd) {
        if (end_names.size() > 0) {
          std::string expected;
          for (auto n : end_names)
            expected += (expected.empty() ? "'" : " or '") + std::string(n) + "'";
          Fail(token, Cat("unexpected end of template, expected ", expected));
        }
        return body;
      }
      if (token.type == T::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->text = token.value;
        body.push_back(std::move(s));
        Advance();
        continue;
      }
      if (token.type == T::kVariableBegin) {
        Advance();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kPrint;
        s->line = token.line;
        s->column = token.column;
        s->expr = ParseTuple(true, {}, false);
        if (Current().type != T::kVariableEnd) Fail(Current(), "expected '}}'");
        Advance();
        body.push_back(std::move(s));
        continue;
      }
      if (token.type != T::kBlockBegin) Fail(token, "unexpected token");
      const Token& keyword = Peek();
      if (keyword.type != T::kName) Fail(keyword, "expected a statement name");
      for (auto n : end_names) {
        if (keyword.value == n) {
          Advance();  // '{%'
          return body;
        }
      }
      Advance();
      body.push_back(ParseStatement());
    }
  }

  std::unique_ptr<Stmt> NewStmt(Stmt::Kind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  std::unique_ptr<Stmt> ParseStatement() {
    Nest nest(*this);
    const Token& keyword = Current();
    const std::string& name = keyword.value;
    if (name == "if") return ParseIf();
    if (name == "for") return ParseFor();
    if (name == "set") return ParseSet();
    if (name == "macro") return ParseMacro();
    if (name == "filter") return ParseFilterBlock();
    if (name == "with") return ParseWith();
    if (name == "generation") {
      Advance();
      ExpectBlockEnd();
      auto s = NewStmt(Stmt::Kind::kBody, keyword);
      s->body = ParseStatements({"endgeneration"});
      Advance();
      ExpectBlockEnd();
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) Fail(keyword, Cat("'", name, "' is only allowed inside a loop"));
      Advance();
      ExpectBlockEnd();
      return NewStmt(name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, keyword);
    }
    if (name == "do") Fail(keyword, "the 'do' statement is not enabled in chat templates");
    if (name == "include" || name == "import" || name == "from" || name == "extends" ||
        name == "block" || name == "call" || name == "autoescape") {
      Fail(keyword, Cat("the '", name, "' statement is not supported in chat templates"));
    }
    Fail(keyword, Cat("unknown statement '", name, "'"));
  }

  std::unique_ptr<Stmt> ParseIf() {
    auto s = NewStmt(Stmt::Kind::kIf, Current());
    Advance();  // if / elif
    while (true) {
      ExprPtr condition = ParseTuple(false, {}, false);
      ExpectBlockEnd();
      StmtList body = ParseStatements({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(condition), std::move(body));
      std::string keyword = Advance().value;
      if (keyword == "elif") continue;
      if (keyword == "else") {
        ExpectBlockEnd();
        s->else_body = ParseStatements({"endif"});
        Advance();
      }
      ExpectBlockEnd();
      return s;
    }
  }

  Target ParseTarget(bool allow_namespace, std::initializer_list<std::string_view> extra_end) {
    Target target;
    const Token& start = Current();
    if (allow_namespace && Current().type == T::kName && Peek().type == T::kOperator &&
        Peek().value == "." && Peek(2).type == T::kName) {
      target.names.push_back(Advance().value);
      Advance();
      target.attribute = Advance().value;
      return target;
    }
    bool parenthesized = IsOp("(");
    if (parenthesized) Advance();
    while (true) {
      if (Current().type != T::kName) Fail(Current(), "can't assign to this expression");
      target.names.push_back(Advance().value);
      if (!IsOp(",")) break;
      target.is_tuple = true;
      Advance();
      bool at_end = Current().type == T::kBlockEnd || IsOp("=") || IsOp(")");
      for (auto n : extra_end) at_end |= IsName(n);
      if (at_end) break;
    }
    if (parenthesized) {
      ExpectOp(")");
      target.is_tuple = true;
    }
    for (const auto& n : target.names) {
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" ||
          n == "None") {
        Fail(start, Cat("can't assign to '", n, "'"));
      }
    }
    return target;
  }

  std::unique_ptr<Stmt> ParseFor() {
    auto s = NewStmt(Stmt::Kind::kFor, Current());
    Advance();
    s->target = ParseTarget(false, {"in"});
    ExpectName("in");
    s->expr = ParseTuple(false, {"recursive"}, false);
    if (IsName("if")) {
      Advance();
      s->condition = ParseExpression(true);
    }
    if (IsName("recursive")) Fail(Current(), "recursive loops are not supported");
    ExpectBlockEnd();
    ++loop_depth_;
    s->body = ParseStatements({"endfor", "else"});
    --loop_depth_;
    if (Advance().value == "else") {
      ExpectBlockEnd();
      s->else_body = ParseStatements({"endfor"});
      Advance();
    }
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseSet() {
    const Token& keyword = Current();
    Advance();
    Target target = ParseTarget(true, {});
    if (IsOp("=")) {
      Advance();
      auto s = NewStmt(Stmt::Kind::kSet, keyword);
      s->target = std::move(target);
      s->expr = ParseTuple(true, {}, false);
      ExpectBlockEnd();
      return s;
    }
    auto s = NewStmt(Stmt::Kind::kSetBlock, keyword);
    if (target.is_tuple || !target.attribute.empty()) Fail(keyword, "a block set needs one name");
    s->target = std::move(target);
    while (IsOp("|")) s->filters.push_back(ParseFilter(nullptr));
    ExpectBlockEnd();
    s->body = ParseStatements({"endset"});
    Advance();
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseMacro() {
    auto s = NewStmt(Stmt::Kind::kMacro, Current());
    Advance();
    s->name = ExpectIdentifier();
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      std::string param = ExpectIdentifier();
      ExprPtr fallback;
      if (IsOp("=")) {
        Advance();
        fallback = ParseExpression(true);
      }
      s->params.emplace_back(param, std::move(fallback));
    }
    Advance();
    ExpectBlockEnd();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = ParseStatements({"endmacro"});
    loop_depth_ = saved;
    Advance();
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseFilterBlock() {
    auto s = NewStmt(Stmt::Kind::kFilterBlock, Current());
    Advance();
    s->filters.push_back(ParseFilter(nullptr, /*inline_start=*/true));
    while (IsOp("|")) s->filters.push_back(ParseFilter(nullptr));
    ExpectBlockEnd();
    s->body = ParseStatements({"endfilter"});
    Advance();
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseWith() {
    auto s = NewStmt(Stmt::Kind::kWith, Current());
    Advance();
    while (Current().type != T::kBlockEnd) {
      if (!s->assignments.empty()) ExpectOp(",");
      Target target = ParseTarget(false, {});
      ExpectOp("=");
      s->assignments.emplace_back(std::move(target), ParseExpression(true));
    }
    ExpectBlockEnd();
    s->body = ParseStatements({"endwith"});
    Advance();
    ExpectBlockEnd();
    return s;
  }

  // ---- expressions

  bool AtTupleEnd(std::initializer_list<std::string_view> extra_end) const {
    if (Current().type == T::kVariableEnd || Current().type == T::kBlockEnd || IsOp(")"))
      return true;
    for (auto n : extra_end) {
      if (IsName(n)) return true;
    }
    return false;
  }

  ExprPtr ParseTuple(bool with_condition, std::initializer_list<std::string_view> extra_end,
                     bool explicit_parentheses) {
    const Token& start = Current();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) ExpectOp(",");
      if (AtTupleEnd(extra_end)) break;
      items.push_back(ParseExpression(with_condition));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) Fail(Current(), "expected an expression");
    }
    auto tuple = Node(Expr::Kind::kTuple, start);
    tuple->children = std::move(items);
    return tuple;
  }

  ExprPtr ParseExpression(bool with_condition) {
    Nest nest(*this);
    return with_condition ? ParseCondition() : ParseOr();
  }

  ExprPtr ParseCondition() {
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      const Token& at = Advance();
      auto node = Node(Expr::Kind::kCondition, at);
      ExprPtr condition = ParseOr();
      ExprPtr otherwise;
      if (IsName("else")) {
        Advance();
        otherwise = ParseCondition();
      }
      node->children.push_back(std::move(condition));
      node->children.push_back(std::move(expr));
      node->children.push_back(std::move(otherwise));
      expr = std::move(node);
    }
    return expr;
  }

  ExprPtr Binary(Expr::Kind kind, const Token& at, ExprPtr left, ExprPtr right,
                 std::string op = "") {
    auto node = Node(kind, at);
    node->name = std::move(op);
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return node;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      const Token& at = Advance();
      left = Binary(Expr::Kind::kOr, at, std::move(left), ParseAnd());
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      const Token& at = Advance();
      left = Binary(Expr::Kind::kAnd, at, std::move(left), ParseNot());
    }
    return left;
  }

  ExprPtr ParseNot() {
    Nest nest(*this);
    if (IsName("not")) {
      const Token& at = Advance();
      auto node = Node(Expr::Kind::kNot, at);
      node->children.push_back(ParseNot());
      return node;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const Token& start = Current();
    ExprPtr first = ParseMath1();
    std::unique_ptr<Expr> node;
    while (true) {
      std::string op;
      if (Current().type == T::kOperator &&
          (Current().value == "==" || Current().value == "!=" || Current().value == "<" ||
           Current().value == "<=" || Current().value == ">" || Current().value == ">=")) {
        op = Advance().value;
      } else if (IsName("in")) {
        Advance();
        op = "in";
      } else if (IsName("not") && Peek().type == T::kName && Peek().value == "in") {
        Advance();
        Advance();
        op = "notin";
      } else {
        break;
      }
      if (!node) {
        node = Node(Expr::Kind::kCompare, start);
        node->children.push_back(std::move(first));
      }
      node->ops.push_back(op);
      node->children.push_back(ParseMath1());
    }
    return node ? std::move(node) : std::move(first);
  }

  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const Token& at = Advance();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseConcat(), at.value);
    }
    return left;
  }

  ExprPtr ParseConcat() {
    const Token& start = Current();
    ExprPtr first = ParseMath2();
    if (!IsOp("~")) return first;
    auto node = Node(Expr::Kind::kConcat, start);
    node->children.push_back(std::move(first));
    while (IsOp("~")) {
      Advance();
      node->children.push_back(ParseMath2());
    }
    return node;
  }

  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& at = Advance();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParsePow(), at.value);
    }
    return left;
  }

  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary(true);
    while (IsOp("**")) {
      const Token& at = Advance();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseUnary(true), at.value);
    }
    return left;
  }

  ExprPtr ParseUnary(bool with_filter) {
    Nest nest(*this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const Token& at = Advance();
      node = Node(at.value == "-" ? Expr::Kind::kNegate : Expr::Kind::kPlus, at);
      node->children.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpression(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& token = Current();
    switch (token.type) {
      case T::kName: {
        Advance();
        const std::string& v = token.value;
        auto node = Node(Expr::Kind::kLiteral, token);
        if (v == "true" || v == "True") {
          node->literal = Value(true);
        } else if (v == "false" || v == "False") {
          node->literal = Value(false);
        } else if (v == "none" || v == "None") {
          node->literal = Value::None();
        } else {
          node->kind = Expr::Kind::kName;
          node->name = v;
        }
        return node;
      }
      case T::kString: {
        std::string text;
        while (Current().type == T::kString) text += Advance().value;
        auto node = Node(Expr::Kind::kLiteral, token);
        node->literal = Value(std::move(text));
        return node;
      }
      case T::kInteger: {
        Advance();
        auto node = Node(Expr::Kind::kLiteral, token);
        errno = 0;
        char* end = nullptr;
        long long v = std::strtoll(token.value.c_str(), &end, 10);
        if (errno != 0) Fail(token, "integer literal out of range");
        node->literal = Value(static_cast<int64_t>(v));
        return node;
      }
      case T::kFloat: {
        Advance();
        auto node = Node(Expr::Kind::kLiteral, token);
        node->literal = Value(std::strtod(token.value.c_str(), nullptr));
        return node;
      }
      case T::kOperator:
        if (token.value == "(") {
          Advance();
          ExprPtr inner = ParseTuple(true, {}, true);
          ExpectOp(")");
          return inner;
        }
        if (token.value == "[") {
          Advance();
          auto node = Node(Expr::Kind::kList, token);
          while (!IsOp("]")) {
            if (!node->children.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            node->children.push_back(ParseExpression(true));
          }
          Advance();
          return node;
        }
        if (token.value == "{") {
          Advance();
          auto node = Node(Expr::Kind::kDict, token);
          while (!IsOp("}")) {
            if (!node->children.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            node->children.push_back(ParseExpression(true));
            ExpectOp(":");
            node->children.push_back(ParseExpression(true));
          }
          Advance();
          return node;
        }
        break;
      default:
        break;
    }
    Fail(token, "unexpected token in expression");
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        const Token& at = Advance();
        if (Current().type == T::kName) {
          auto attr = Node(Expr::Kind::kGetAttr, at);
          attr->name = Advance().value;
          attr->children.push_back(std::move(node));
          node = std::move(attr);
        } else if (Current().type == T::kInteger) {
          auto item = Node(Expr::Kind::kGetItem, at);
          auto index = Node(Expr::Kind::kLiteral, Current());
          index->literal =
              Value(static_cast<int64_t>(std::strtoll(Advance().value.c_str(), nullptr, 10)));
          item->children.push_back(std::move(node));
          item->children.push_back(std::move(index));
          node = std::move(item);
        } else {
          Fail(Current(), "expected a name after '.'");
        }
      } else if (IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr object) {
    const Token& at = Advance();  // '['
    std::vector<ExprPtr> args;
    while (!IsOp("]")) {
      if (!args.empty()) ExpectOp(",");
      args.push_back(ParseSubscribed());
    }
    Advance();
    if (args.empty()) Fail(at, "expected a subscript");
    if (args.size() == 1 && args[0]->kind == Expr::Kind::kSlice) {
      args[0]->children[0] = std::move(object);
      return std::move(args[0]);
    }
    auto node = Node(Expr::Kind::kGetItem, at);
    node->children.push_back(std::move(object));
    if (args.size() == 1) {
      node->children.push_back(std::move(args[0]));
    } else {
      auto tuple = Node(Expr::Kind::kTuple, at);
      tuple->children = std::move(args);
      node->children.push_back(std::move(tuple));
    }
    return node;
  }

  // One subscript: an expression or a slice `a:b:c` (returned as kSlice with children[0] empty).
  ExprPtr ParseSubscribed() {
    const Token& at = Current();
    ExprPtr start;
    if (!IsOp(":")) {
      start = ParseExpression(true);
      if (!IsOp(":")) return start;
    }
    Advance();  // ':'
    auto slice = Node(Expr::Kind::kSlice, at);
    slice->children.push_back(nullptr);
    slice->children.push_back(std::move(start));
    ExprPtr stop, step;
    if (!IsOp(":") && !IsOp("]") && !IsOp(",")) stop = ParseExpression(true);
    if (IsOp(":")) {
      Advance();
      if (!IsOp("]") && !IsOp(",")) step = ParseExpression(true);
    }
    slice->children.push_back(std::move(stop));
    slice->children.push_back(std::move(step));
    return slice;
  }

  // Appends call arguments to node.children (after what it already holds) and node.keywords.
  void ParseCallArguments(Expr& node) {
    ExpectOp("(");
    size_t parsed = 0;
    while (!IsOp(")")) {
      if (parsed++ > 0) ExpectOp(",");
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) Fail(Current(), "*args and **kwargs are not supported");
      if (Current().type == T::kName && Peek().type == T::kOperator && Peek().value == "=") {
        std::string key = Advance().value;
        Advance();
        node.keywords.emplace_back(key, ParseExpression(true));
      } else {
        if (!node.keywords.empty()) Fail(Current(), "positional argument after keyword argument");
        node.children.push_back(ParseExpression(true));
      }
    }
    Advance();
  }

  ExprPtr ParseCall(ExprPtr callee) {
    auto node = Node(Expr::Kind::kCall, Current());
    node->children.push_back(std::move(callee));
    ParseCallArguments(*node);
    return node;
  }

  // `| name(args)`; with inline_start the leading '|' is absent (filter blocks).
  ExprPtr ParseFilter(ExprPtr value, bool inline_start = false) {
    if (!inline_start) ExpectOp("|");
    const Token& at = Current();
    auto node = Node(Expr::Kind::kFilter, at);
    node->name = ExpectIdentifier();
    while (IsOp(".")) {
      Advance();
      node->name += '.';
      node->name += ExpectIdentifier();
    }
    if (!IsKnownFilter(node->name)) Fail(at, Cat("no filter named '", node->name, "'"));
    node->children.push_back(std::move(value));
    if (IsOp("(")) ParseCallArguments(*node);
    return node;
  }

  ExprPtr ParseTest(ExprPtr value) {
    const Token& at = Advance();  // 'is'
    auto node = Node(Expr::Kind::kTest, at);
    if (IsName("not")) {
      Advance();
      node->negated = true;
    }
    node->name = ExpectIdentifier();
    if (!IsKnownTest(node->name)) Fail(at, Cat("no test named '", node->name, "'"));
    node->children.push_back(std::move(value));
    const Token& next = Current();
    if (IsOp("(")) {
      ParseCallArguments(*node);
    } else if ((next.type == T::kName || next.type == T::kString || next.type == T::kInteger ||
                next.type == T::kFloat || IsOp("(") || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) Fail(next, "you cannot chain multiple tests with is");
      node->children.push_back(ParsePostfix(ParsePrimary()));
    }
    return node;
  }

  ExprPtr ParseFilterExpression(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        node = ParseFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  // Limits how deeply expressions and blocks nest, so that hostile templates get an error instead
  // of exhausting the stack (Python's own parser stops at a similar depth).
  struct Nest {
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) Fail(p.Current(), "template nested too deeply");
    }
    ~Nest() { --p.depth_; }
    Parser& p;
  };
  static constexpr int kMaxDepth = 150;

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
};

}  // namespace

StmtList Parse(std::string_view source) {
  return Parser(Tokenize(source)).ParseTemplate();
}

}  // namespace whale::jinja
