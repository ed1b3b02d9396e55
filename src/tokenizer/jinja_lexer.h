// Jinja lexer with the environment transformers uses for chat templates: trim_blocks,
// lstrip_blocks, `-`/`+` whitespace control, comments, {% raw %}, newlines normalized to "\n" and
// the template's single trailing newline dropped (keep_trailing_newline=False).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace whale::jinja {

struct Token {
  enum class Type {
    kData,           // template text to output as is
    kVariableBegin,  // {{
    kVariableEnd,    // }}
    kBlockBegin,     // {%
    kBlockEnd,       // %}
    kName,
    kString,  // value holds the decoded string
    kInteger,
    kFloat,
    kOperator,
    kEnd,
  };
  Type type;
  std::string value;
  int line = 1;
  int column = 1;
};

// Throws TemplateError ("line L, column C: ...") for lexical errors (unterminated tags, strings or
// comments, unbalanced brackets, unexpected characters).
std::vector<Token> Tokenize(std::string_view source);

}  // namespace whale::jinja
