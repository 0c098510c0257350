// Jinja parser: tokens -> syntax tree, following jinja2/parser.py's grammar
// and operator precedence.
#pragma once

#include <vector>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace codey::jinja {

// Throws JinjaError ("TemplateSyntaxError", "TemplateAssertionError").
Body parse(std::vector<Token> tokens);

}  // namespace codey::jinja
