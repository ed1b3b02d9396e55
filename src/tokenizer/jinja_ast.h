// The syntax tree of a Jinja template (the subset whale renders; see jinja_parser.h).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace whale::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // children = items
    kTuple,    // children = items
    kDict,     // children = key, value, key, value, ...
    kGetAttr,  // children[0].name
    kGetItem,  // children[0][children[1]]
    kSlice,    // children[0][children[1]:children[2]:children[3]] (null = omitted)
    kCall,     // children[0](children[1..], keywords)
    kFilter,   // children[0] | name(children[1..], keywords)
    kTest,     // children[0] is [not] name(children[1..], keywords)
    kNegate,   // -children[0]
    kPlus,     // +children[0]
    kNot,      // not children[0]
    kBinary,   // children[0] name children[1], name in + - * / // % **
    kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ...
    kAnd,
    kOr,
    kCondition,  // children[1] if children[0] else children[2] (null: undefined)
    kConcat,     // children joined with ~
  };
  Kind kind;
  int line = 0, column = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> ops;  // kCompare: == != < <= > >= in notin
  bool negated = false;          // kTest: `is not`
};

// Left side of set / for / with: a name, a tuple of names, or namespace attribute `ns.attr`.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  bool is_tuple = false;
  std::string attribute;  // set on `name.attribute`
};

struct Stmt {
  enum class Kind {
    kOutput,       // text
    kPrint,        // {{ expr }}
    kIf,           // branches (condition, body), else_body
    kFor,          // target in expr [if condition]: body, else_body
    kSet,          // target = expr
    kSetBlock,     // target = rendered body (then filters in `filters`)
    kMacro,        // name(params): body
    kFilterBlock,  // body | filters
    kWith,         // assignments: body
    kBreak,
    kContinue,
    kBody,  // a plain body ({% generation %})
  };
  Kind kind;
  int line = 0, column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<std::pair<ExprPtr, StmtList>> branches;
  StmtList body, else_body;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters with defaults
  std::vector<std::pair<Target, ExprPtr>> assignments;  // with
  // Filter chains for kFilterBlock / kSetBlock: each a kFilter expression whose children[0] is
  // null (the body's output goes there).
  std::vector<ExprPtr> filters;
};

}  // namespace whale::jinja
