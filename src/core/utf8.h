// UTF-8 decoding and encoding shared by the tokenizer and the grammar compiler: strict decoding (the rules
// Rust's `str` enforces: no overlongs, no surrogates, nothing above U+10FFFF, so "valid" matches Hugging Face
// tokenizers), encoding, and lossy repair as Rust's String::from_utf8_lossy does it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tailor {

// Length of the valid UTF-8 sequence starting at s[i] (1..4) with the code point in *cp; 0 when the bytes
// there do not start a valid sequence (overlong, surrogate, > U+10FFFF, truncated, stray continuation byte).
int utf8_decode(std::string_view s, size_t i, char32_t* cp);
// Decodes a sequence known to be valid (no checks): returns its length.
inline int utf8_decode_valid(const char* p, char32_t* cp) {
  const auto b = static_cast<unsigned char>(p[0]);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b < 0xE0) {
    *cp = (char32_t(b & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (b < 0xF0) {
    *cp = (char32_t(b & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return 3;
  }
  *cp = (char32_t(b & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
        (p[3] & 0x3F);
  return 4;
}
// Length of the sequence whose first byte is b, for valid input.
inline int utf8_len(unsigned char b) {
  return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}
void utf8_append(std::string& out, char32_t cp);

// Byte offset of the first byte that is not part of valid UTF-8, or std::string_view::npos.
size_t utf8_first_invalid(std::string_view s);
// Replaces each maximal invalid subsequence by U+FFFD (Rust String::from_utf8_lossy / WHATWG decoding).
std::string utf8_lossy(std::string_view s);
// Length of the longest prefix of s that ends on a complete code point boundary (a truncated sequence at the
// end is excluded; invalid bytes in the middle are not this function's business).
size_t utf8_complete_prefix(std::string_view s);

}  // namespace tailor
