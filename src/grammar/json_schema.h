// JSON Schema -> grammar. Every string the grammar generates is a JSON document that validates against the
// schema (the grammar may generate a subset: e.g. only ASCII for `pattern` wildcards, bounded integer
// digits).
//
// Supported: type (object, array, string, integer, number, boolean, null, and lists of them), properties (in
// the order written), required, additionalProperties (false by default: see the option), enum, const, anyOf,
// oneOf (branches must be visibly disjoint), allOf (merged), $ref / $defs / definitions (JSON pointers within
// the document, recursion included), nullable, items, prefixItems, additionalItems, minItems, maxItems,
// minLength, maxLength, pattern, format (date, time, date-time, email, uuid, uri, ipv4, ipv6, hostname),
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (integers; integral bounds for numbers). A keyword
// that changes which values are valid but is not supported is an error that lists it.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

struct JsonSchemaOptions {
  // Whitespace between JSON tokens. Compact (none) by default; flexible allows up to max_whitespace of
  // [ \t\n] wherever JSON allows whitespace.
  bool flexible_whitespace = false;
  uint32_t max_whitespace = 20;
  // An object schema without "additionalProperties" allows no extra keys (what pydantic output means). Set
  // false to follow the JSON Schema default (extra keys with any value allowed).
  bool strict_additional_properties = true;
  // Integers and number integer parts unbounded in the schema stay within this many digits, so that every
  // JSON parser (int64, double) reads them exactly.
  uint32_t max_integer_digits = 15;
  // Fraction digits of numbers (unbounded fractions would only be cut by the generation length).
  uint32_t max_fraction_digits = 15;
};

// schema_json: the schema document. Errors name the JSON pointer of the offending sub-schema.
Result<Grammar> json_schema_to_grammar(std::string_view schema_json, const JsonSchemaOptions& opt = {});

}  // namespace tailor::grammar
