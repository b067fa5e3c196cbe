#include "tokenizer/chat_template/unicode.h"

#include <utf8proc.h>

namespace tailor::chat_template {

size_t utf8_next(std::string_view s, size_t i, uint32_t* cp, bool* valid) {
  auto b0 = static_cast<unsigned char>(s[i]);
  auto fail = [&]() -> size_t {
    *cp = b0;
    if (valid) *valid = false;
    return 1;
  };
  if (b0 < 0x80) {
    *cp = b0;
    if (valid) *valid = true;
    return 1;
  }
  size_t n;
  uint32_t c;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    c = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    c = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    c = b0 & 0x07;
  } else {
    return fail();
  }
  if (i + n > s.size()) return fail();
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return fail();
    c = (c << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF ||
      (c >= 0xD800 && c <= 0xDFFF))
    return fail();
  *cp = c;
  if (valid) *valid = true;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

size_t cp_count(std::string_view s) {
  if (is_ascii(s)) return s.size();
  size_t n = 0;
  uint32_t cp;
  for (size_t i = 0; i < s.size(); ++n) i += utf8_next(s, i, &cp);
  return n;
}

std::vector<size_t> cp_offsets(std::string_view s) {
  std::vector<size_t> off;
  off.reserve(s.size() + 1);
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    off.push_back(i);
    i += utf8_next(s, i, &cp);
  }
  off.push_back(s.size());
  return off;
}

bool py_isspace(uint32_t cp) {
  // Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

static utf8proc_category_t category(uint32_t cp) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(cp)));
}

bool py_isprintable(uint32_t cp) {
  if (cp == ' ') return true;
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

bool py_iscased(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

bool py_isupper_cp(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  return category(cp) == UTF8PROC_CATEGORY_LU || category(cp) == UTF8PROC_CATEGORY_LT;
}

bool py_islower_cp(uint32_t cp) {
  if (cp < 0x80) return cp >= 'a' && cp <= 'z';
  return category(cp) == UTF8PROC_CATEGORY_LL;
}

bool py_isalpha_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

bool py_isdigit_cp(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  // Superscript digits are digits to Python too.
  if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0x2070 && cp <= 0x2079)) return true;
  return category(cp) == UTF8PROC_CATEGORY_ND;
}

bool py_isnumeric_cp(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

void append_upper_cp(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp >= 'a' && cp <= 'z' ? cp - 32 : cp);
  } else if (cp == 0xDF) {
    out += "SS";  // the one one-to-many mapping templates are likely to meet (German sharp s)
  } else {
    append_utf8(out, static_cast<uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))));
  }
}

void append_lower_cp(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
  } else if (cp == 0x130) {
    out += "i\xcc\x87";  // capital I with dot above lowers to i + combining dot (Python's full mapping)
  } else {
    append_utf8(out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  }
}

void append_title_cp(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    append_upper_cp(out, cp);
  } else if (cp == 0xDF) {
    out += "Ss";
  } else {
    append_utf8(out, static_cast<uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))));
  }
}

namespace {
// Applies f(out, cp, valid) to every code point; invalid bytes are copied through.
template <class F>
std::string map_cps(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_next(s, i, &cp, &valid);
    if (valid)
      f(out, cp);
    else
      out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

template <class P>
bool all_cps(std::string_view s, P p) {
  if (s.empty()) return false;
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    i += utf8_next(s, i, &cp, &valid);
    if (!valid || !p(cp)) return false;
  }
  return true;
}
}  // namespace

std::string py_upper(std::string_view s) {
  return map_cps(s, append_upper_cp);
}
std::string py_lower(std::string_view s) {
  return map_cps(s, append_lower_cp);
}

std::string py_title(std::string_view s) {
  bool prev_cased = false;
  return map_cps(s, [&](std::string& out, uint32_t cp) {
    if (prev_cased)
      append_lower_cp(out, cp);
    else
      append_title_cp(out, cp);
    prev_cased = py_iscased(cp);
  });
}

std::string py_capitalize(std::string_view s) {
  bool first = true;
  return map_cps(s, [&](std::string& out, uint32_t cp) {
    if (first)
      append_title_cp(out, cp);
    else
      append_lower_cp(out, cp);
    first = false;
  });
}

std::string py_swapcase(std::string_view s) {
  return map_cps(s, [](std::string& out, uint32_t cp) {
    if (py_isupper_cp(cp))
      append_lower_cp(out, cp);
    else if (py_islower_cp(cp))
      append_upper_cp(out, cp);
    else
      append_utf8(out, cp);
  });
}

bool py_isspace(std::string_view s) {
  return all_cps(s, [](uint32_t c) { return py_isspace(c); });
}
bool py_isalpha(std::string_view s) {
  return all_cps(s, py_isalpha_cp);
}
bool py_isdigit(std::string_view s) {
  return all_cps(s, py_isdigit_cp);
}
bool py_isalnum(std::string_view s) {
  return all_cps(s, [](uint32_t c) { return py_isalpha_cp(c) || py_isnumeric_cp(c); });
}

bool py_isupper(std::string_view s) {
  bool any_cased = false;
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    i += utf8_next(s, i, &cp);
    if (py_islower_cp(cp)) return false;
    if (py_iscased(cp)) any_cased = true;
  }
  return any_cased;
}

bool py_islower(std::string_view s) {
  bool any_cased = false;
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    i += utf8_next(s, i, &cp);
    if (py_isupper_cp(cp)) return false;
    if (py_iscased(cp)) any_cased = true;
  }
  return any_cased;
}

}  // namespace tailor::chat_template
