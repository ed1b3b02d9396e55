// Renders a parsed Jinja template: statements, Python operators, scoping (an `if` shares its
// scope, each `for` iteration and each macro call gets a fresh one; namespaces are shared objects).
#pragma once

#include <string>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace whale::jinja {

// `variables` are the render context (they shadow `globals`). Throws TemplateError (with the line
// and column of the failing expression) or TemplateRaised.
std::string Render(const StmtList& program, const Dict& globals, const Dict& variables);

}  // namespace whale::jinja
