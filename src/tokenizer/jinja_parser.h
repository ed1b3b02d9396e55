// Jinja parser: tokens -> syntax tree, with Jinja's grammar and operator precedence (filters and
// tests bind to the preceding primary; `not` is looser than comparisons; unary minus binds tighter
// than `**`). Statements: if/elif/else, for (with `if` filter, else, loop variable), set (values,
// tuples, namespace attributes, blocks), macro, filter, with, break/continue, generation. Anything
// else is a TemplateError naming the line and column.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace whale::jinja {

StmtList Parse(std::string_view source);

// Whether a filter / test with this name exists (unknown names are rejected at parse time, as
// Jinja does when compiling).
bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);

}  // namespace whale::jinja
