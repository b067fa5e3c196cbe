// Building blocks for JSON Schema -> grammar: JSON string characters, exact integer ranges as digit automata,
// bounded numbers, and string formats. Internal to src/grammar (json_schema.cpp and its tests use them).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/status.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

// One character of a JSON string as it may be written: any character JSON allows raw, or an escape
// (\" \\ \/ \b \f \n \r \t, \uXXXX except \u0000 and lone surrogates, or a surrogate pair). Whatever the
// encoding, it decodes to exactly one code point, so counted repetitions implement minLength/maxLength.
Expr json_string_char_any();

// Decimal integers in [lo, hi] with no leading zeros, "-0" never produced.
Expr uint_range_expr(uint64_t lo, uint64_t hi);
Expr int_range_expr(int64_t lo, int64_t hi);

struct NumberBounds {
  std::optional<long double> lo, hi;  // integral values (checked by the caller)
  bool lo_exclusive = false, hi_exclusive = false;
};
// A JSON number in the bounds: decimal notation, integer part within max_int_digits when unbounded, fraction
// up to max_frac_digits. Without bounds, an exponent of up to two digits is allowed too.
Result<Expr> number_expr(const NumberBounds& b, uint32_t max_int_digits, uint32_t max_frac_digits);

// The inside of a JSON string for a supported `format`; nullopt for an unknown format.
std::optional<Expr> string_format_expr(std::string_view format);
// Shortest and longest length (code points) of the format's strings (UINT32_MAX = unbounded).
std::pair<uint32_t, uint32_t> string_format_length(std::string_view format);
const char* supported_formats();

}  // namespace tailor::grammar
