// Tokeniser for jinja2 templates, configured as transformers configures its environment: default delimiters,
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, newlines normalised to "\n". Whitespace
// control (`{%-`, `-%}`, `{{-`, `-}}`, `{%+`, `+%}`), comments and {% raw %} follow jinja2's lexer rules
// (jinja2/lexer.py) so that the text between tags comes out byte-identical.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::chat_template {

enum class Tok : uint8_t {
  data,
  var_begin,
  var_end,
  block_begin,
  block_end,
  name,
  string,
  integer,
  floating,
  // operators
  add,
  sub,
  mul,
  div,
  floordiv,
  mod,
  pow,
  tilde,
  lparen,
  rparen,
  lbracket,
  rbracket,
  lbrace,
  rbrace,
  eq,
  ne,
  lt,
  lteq,
  gt,
  gteq,
  assign,
  dot,
  colon,
  pipe,
  comma,
  semicolon,
  eof,
};

struct Token {
  Tok type;
  size_t pos;        // byte offset in the normalised source
  std::string text;  // data, name, or the unescaped string literal
  int64_t ival = 0;
  double fval = 0;
};

// Human-readable token description for error messages ("'}}'", "name 'foo'", "end of template").
std::string describe(const Token& t);

// jinja2 applies these to the source before lexing: every \r\n and \r becomes \n, and one trailing newline
// is dropped.
std::string normalize_source(std::string_view source);

// Tokenises a normalised source; throws TemplateError (with pos) on lexical errors.
std::vector<Token> tokenize(const std::string& src);

// 1-based line and column (in code points) of a byte offset.
void line_col(const std::string& src, size_t pos, int* line, int* col);

}  // namespace tailor::chat_template
