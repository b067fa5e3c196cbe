// Regular expressions -> grammar. The subset JSON Schema patterns and users write: literals, `.`, classes
// ([a-z], [^...], \d \w \s \D \W \S, \p{L} / \P{..}), groups ((...), (?:...), (?<name>...), (?P<name>...)),
// alternation, quantifiers (* + ? {n} {n,} {n,m} {,m}, lazy forms), anchors ^ $ \A \Z \z at the start/end,
// escapes (\n \t \r \f \v \0 \xHH \uHHHH \u{H..} \cX, escaped punctuation). Lookaround, backreferences, \b,
// possessive quantifiers and inline flags are rejected with an error naming them.
//
// The grammar generates *full matches*. JSON Schema's `pattern` is unanchored (re.search), and a full match
// is one of the strings a search accepts, so the generated value always validates.
#pragma once

#include <string_view>

#include "core/status.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

struct RegexOptions {
  // json_string: emit the matched text as the inside of a JSON string (", \ and control characters escaped),
  // as a JSON Schema "pattern" needs. raw: emit the text itself.
  bool json_string = false;
  // Generate only characters on which Python's re and ECMAScript regex engines agree (printable ASCII for
  // `.`, negated classes and \D \W \S; ASCII for \d \w \s). Validators of both kinds then accept the output.
  bool ascii_safe = false;
};

// The expression for `pattern`; errors quote the pattern and the offending position.
Result<Expr> regex_to_expr(std::string_view pattern, const RegexOptions& opt = {});
// Fewest and most characters (code points) in a full match of `pattern`; max = UINT32_MAX when unbounded.
Result<std::pair<uint32_t, uint32_t>> regex_length_bounds(std::string_view pattern);
// A grammar whose root is the pattern.
Result<Grammar> regex_to_grammar(std::string_view pattern, const RegexOptions& opt = {});

// The JSON-string encoding of one character from `set`: the character itself where JSON allows it raw, the
// short escape (\" \\ \n \t \r \b \f) or \u00XX for the characters that must be escaped.
Expr json_string_char(const CharSet& set);

}  // namespace tailor::grammar
