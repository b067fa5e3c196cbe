// UTF-8 helpers for the grammar compiler: code-point ranges as byte-range sequences and Unicode
// general-category sets (\p{L} and friends) built from utf8proc. Decoding and encoding: core/utf8.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "grammar/grammar.h"

namespace tailor::grammar {

// A sequence of 1..4 byte ranges: the UTF-8 encodings of a block of code points.
struct Utf8Seq {
  uint8_t n = 0;
  std::array<uint8_t, 4> lo{}, hi{};
};
// Splits [lo, hi] (surrogates skipped) into byte-range sequences whose union is exactly its UTF-8 encodings.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<Utf8Seq>& out);

// Code points of a Unicode general category or group ("L", "Lu", "N", "Nd", "P", ...; also long names
// "Letter", "Number"). Returns false for an unknown name.
bool unicode_category_set(std::string_view name, CharSet* out);

}  // namespace tailor::grammar
