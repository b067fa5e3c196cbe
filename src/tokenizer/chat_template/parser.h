// Recursive-descent parser producing the syntax tree, following jinja2/parser.py's grammar and operator
// precedence (ternary < or < and < not < comparisons < + - < ~ < * / // % < ** < unary < postfix/filters).
#pragma once

#include <memory>
#include <string_view>

#include "tokenizer/chat_template/ast.h"

namespace tailor::chat_template {

// Throws TemplateError (with a source position) on syntax errors and on unknown filters/tests outside
// conditional code (jinja2 reports those at compile time too).
std::unique_ptr<Program> parse_program(std::string_view source);

// jinja2's optimizer: replaces constant subexpressions by their values at compile time, and constant {{ }}
// outputs by their text. This is observable: folding reads slices through the sandbox's lenient getitem, so
// `{{ (1)[1:] }}` prints nothing where `{{ x[1:] }}` with x = 1 raises. Defined in fold.cpp.
void fold_constants(Program& prog);

}  // namespace tailor::chat_template
