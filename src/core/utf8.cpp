#include "core/utf8.h"

namespace tailor {

namespace {
inline bool is_cont(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

// Number of bytes of s[i..] that form a valid prefix of a UTF-8 sequence (>= 1 even when s[i] itself is
// invalid), and whether the full sequence is complete and valid. This is the "maximal subpart" rule of
// Unicode 3.9 / WHATWG, which Rust's from_utf8_lossy follows: one U+FFFD per maximal subpart.
struct SeqCheck {
  int len;  // bytes consumed (valid sequence length, or the maximal invalid subpart length)
  bool valid;
};
SeqCheck check_seq(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, true};
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // range allowed for the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return {1, false};
  }
  int k = 1;
  for (int j = 0; j < need; ++j) {
    if (i + k >= s.size()) return {k, false};
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (j == 0 ? (b < lo || b > hi) : !is_cont(b)) return {k, false};
    ++k;
  }
  return {k, true};
}
}  // namespace

int utf8_decode(std::string_view s, size_t i, char32_t* cp) {
  if (i >= s.size()) return 0;
  SeqCheck c = check_seq(s, i);
  if (!c.valid) return 0;
  utf8_decode_valid(s.data() + i, cp);
  return c.len;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

size_t utf8_first_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    SeqCheck c = check_seq(s, i);
    if (!c.valid) return i;
    i += c.len;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view s) {
  size_t bad = utf8_first_invalid(s);
  if (bad == std::string_view::npos) return std::string(s);
  std::string out(s.substr(0, bad));
  size_t i = bad;
  while (i < s.size()) {
    SeqCheck c = check_seq(s, i);
    if (c.valid) {
      out.append(s.data() + i, c.len);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += c.len;
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the last lead byte; keep it only if its sequence is
  // complete.
  size_t n = s.size();
  size_t k = 0;
  while (k < 3 && k < n && is_cont(static_cast<unsigned char>(s[n - 1 - k]))) ++k;
  if (k == n) return n;  // only continuation bytes: nothing to hold back for
  const auto lead = static_cast<unsigned char>(s[n - 1 - k]);
  if (lead < 0xC0) return n;  // ASCII or stray continuation: complete as far as streaming is concerned
  const int want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return (int(k) + 1 >= want) ? n : n - 1 - k;
}

}  // namespace tailor
