// The text format for user grammars (GBNF-like, as llama.cpp's):
//
//   root   ::= "{" ws pair ("," ws pair)* "}"      # comments run to the end of the line
//   pair   ::= string ":" ws value
//   string ::= "\"" [^"\\\x00-\x1f]* "\""
//   digit  ::= [0-9]   hexes ::= [0-9a-f]{4}   any ::= .   byte ::= %x80-BF
//
// Rules are `name ::= alternatives`; a rule ends where the next `name ::=` begins. Atoms: "string" or
// 'string' literals, [char classes] with ranges and ^ negation, `.` (any character), rule names, ( groups ),
// %xHH / %xHH-HH raw bytes. Quantifiers: * + ? {m} {m,} {m,n} {,n}. Escapes: \n \r \t \\ \" \' \[ \] \- \^
// \/ \0 \xHH \uHHHH \UHHHHHHHH \u{H...} (code points, encoded as UTF-8). The start rule is `root`.
#pragma once

#include <string_view>

#include "core/status.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

// Errors name line:col and what was expected, e.g. `grammar line 3:14: expected "::=" after rule name
// "pair"`.
Result<Grammar> parse_grammar_text(std::string_view text);

}  // namespace tailor::grammar
