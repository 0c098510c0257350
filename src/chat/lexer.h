// Jinja lexer: splits a template into text and tag tokens, applying Jinja's
// whitespace control ({%- -%}, trim_blocks, lstrip_blocks) exactly as Jinja 3.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace codey::jinja {

enum class TokenType : uint8_t {
  kData,           // template text, whitespace control already applied
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,   // value: the decoded literal
  kInteger,  // int_value
  kFloat,    // float_value
  kOperator, // value: "+", "//", "(", ...
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws JinjaError("TemplateSyntaxError") on malformed input. Ends with kEof.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options);

}  // namespace codey::jinja
