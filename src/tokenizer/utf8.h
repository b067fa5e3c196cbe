// UTF-8 helpers of the tokenizer pipeline: core/utf8.h's strict decoding and lossy repair (re-exported here),
// the GPT-2 byte-level alphabet, and the few Unicode predicates the pipeline needs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/utf8.h"

namespace tailor::tok {

inline constexpr size_t kNpos = std::string_view::npos;

// The decoding and encoding functions live in core (shared with the grammar compiler).
using tailor::utf8_append;
using tailor::utf8_complete_prefix;
using tailor::utf8_decode;
using tailor::utf8_decode_valid;
using tailor::utf8_first_invalid;
using tailor::utf8_len;
using tailor::utf8_lossy;

// GPT-2 byte-level alphabet: every byte maps to a printable code point ('Ġ' for space).
const std::array<char32_t, 256>& byte_to_unicode();
// The byte a byte-level code point stands for, or -1.
int unicode_to_byte(char32_t cp);

// Rust char::is_whitespace (Unicode White_Space).
bool is_whitespace(char32_t c);
// Rust char::is_alphanumeric (Alphabetic or Numeric general categories), via utf8proc.
bool is_alphanumeric(char32_t c);
// Rust char::is_numeric (Nd, Nl, No).
bool is_numeric(char32_t c);
// Unicode punctuation (P*) or ASCII punctuation, as HF's Punctuation pre-tokenizer tests it.
bool is_punctuation(char32_t c);

}  // namespace tailor::tok
