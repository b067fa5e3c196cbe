#include "grammar/json_values.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "grammar/regex.h"

namespace tailor::grammar {

namespace {

Expr digit() {
  return chars(CharSet::range('0', '9'));
}
Expr digit_range(char a, char b) {
  return chars(CharSet::range(uint32_t(a), uint32_t(b)));
}
CharSet hex_set() {
  CharSet s = CharSet::range('0', '9');
  s.add('a', 'f');
  s.add('A', 'F');
  return s;
}
Expr hex() {
  return chars(hex_set());
}
Expr hex_of(const char* ranges) {
  // ranges: pairs of characters, e.g. "09afAF"
  CharSet s;
  for (const char* p = ranges; p[0] && p[1]; p += 2) s.add(uint32_t(p[0]), uint32_t(p[1]));
  return chars(s);
}

bool all_of(std::string_view s, char c) {
  for (char x : s) {
    if (x != c) return false;
  }
  return true;
}

// Decimal strings a <= b of equal length.
Expr same_length_range(std::string_view a, std::string_view b) {
  if (a.empty()) return empty_expr();
  if (a == b) return lit(a);
  if (a[0] == b[0]) return seq({lit(a.substr(0, 1)), same_length_range(a.substr(1), b.substr(1))});
  size_t rest = a.size() - 1;
  std::vector<Expr> alts;
  char full_lo = a[0], full_hi = b[0];
  if (!all_of(a.substr(1), '0')) {
    alts.push_back(seq({lit(a.substr(0, 1)), same_length_range(a.substr(1), std::string(rest, '9'))}));
    full_lo = char(a[0] + 1);
  }
  bool b_full = all_of(b.substr(1), '9');
  if (!b_full) full_hi = char(b[0] - 1);
  if (full_lo <= full_hi)
    alts.push_back(seq({digit_range(full_lo, full_hi), rep(digit(), uint32_t(rest), uint32_t(rest))}));
  if (!b_full)
    alts.push_back(seq({lit(b.substr(0, 1)), same_length_range(std::string(rest, '0'), b.substr(1))}));
  return alt(std::move(alts));
}

uint64_t pow10u(uint32_t d) {
  uint64_t v = 1;
  for (uint32_t i = 0; i < d; ++i) v *= 10;
  return v;
}

}  // namespace

Expr json_string_char_any() {
  CharSet raw = CharSet::range(0x20, kMaxCodePoint);
  raw = raw.minus(CharSet::of('"')).minus(CharSet::of('\\'));
  // \u escapes: any BMP code point except U+0000 (some validators stop counting at NUL) and surrogates, or a
  // high+low surrogate pair (one supplementary code point).
  Expr u_escape = alt({
      seq({lit("00"), alt({seq({lit("0"), hex_of("19afAF")}), seq({hex_of("19afAF"), hex()})})}),
      seq({lit("0"), hex_of("19afAF"), hex(), hex()}),
      seq({hex_of("19acAC"), hex(), hex(), hex()}),
      seq({hex_of("ddDD"), hex_of("07"), hex(), hex()}),
      seq({hex_of("efEF"), hex(), hex(), hex()}),
      seq({hex_of("ddDD"), hex_of("89abAB"), hex(), hex(), lit("\\u"), hex_of("ddDD"), hex_of("cfCF"), hex(),
           hex()}),
  });
  CharSet short_esc;
  for (char c : std::string_view("\"\\/bfnrt")) short_esc.add(uint8_t(c), uint8_t(c));
  return alt({chars(raw), seq({lit("\\"), alt({chars(short_esc), seq({lit("u"), std::move(u_escape)})})})});
}

Expr uint_range_expr(uint64_t lo, uint64_t hi) {
  std::vector<Expr> parts;
  std::string slo = std::to_string(lo), shi = std::to_string(hi);
  for (size_t d = slo.size(); d <= shi.size(); ++d) {
    uint64_t a = std::max<uint64_t>(lo, d == 1 ? 0 : pow10u(uint32_t(d - 1)));
    uint64_t b = d >= 20 ? hi : std::min<uint64_t>(hi, pow10u(uint32_t(d)) - 1);
    if (a > b) continue;
    parts.push_back(same_length_range(std::to_string(a), std::to_string(b)));
  }
  return alt(std::move(parts));
}

Expr int_range_expr(int64_t lo, int64_t hi) {
  std::vector<Expr> parts;
  if (hi >= 0) parts.push_back(uint_range_expr(uint64_t(std::max<int64_t>(lo, 0)), uint64_t(hi)));
  if (lo < 0) {
    uint64_t mag_hi = uint64_t(-(lo + 1)) + 1;  // |lo| without overflow at INT64_MIN
    uint64_t mag_lo = hi < 0 ? uint64_t(-(hi + 1)) + 1 : 1;
    parts.push_back(seq({lit("-"), uint_range_expr(mag_lo, mag_hi)}));
  }
  return alt(std::move(parts));
}

Result<Expr> number_expr(const NumberBounds& b, uint32_t max_int_digits, uint32_t max_frac_digits) {
  max_int_digits = std::clamp<uint32_t>(max_int_digits, 1, 18);
  max_frac_digits = std::clamp<uint32_t>(max_frac_digits, 1, 100);
  const uint64_t cap = pow10u(max_int_digits) - 1;
  Expr frac_any = opt(seq({lit("."), rep(digit(), 1, max_frac_digits)}));
  if (!b.lo && !b.hi) {
    Expr int_part = alt({lit("0"), seq({digit_range('1', '9'), rep(digit(), 0, max_int_digits - 1)})});
    CharSet e_set = CharSet::of('e');
    e_set.add('E', 'E');
    CharSet sign = CharSet::of('+');
    sign.add('-', '-');
    Expr exp = opt(seq({chars(e_set), opt(chars(sign)), rep(digit(), 1, 2)}));
    return seq({opt(lit("-")), std::move(int_part), std::move(frac_any), std::move(exp)});
  }
  // Bounded: decimal notation only. Work with magnitudes: y in [a, b] for x >= 0 and for -x.
  long double L = b.lo ? *b.lo : -static_cast<long double>(cap);
  long double H = b.hi ? *b.hi : static_cast<long double>(cap);
  bool incl_l = !(b.lo && b.lo_exclusive), incl_h = !(b.hi && b.hi_exclusive);
  L = std::max(L, -static_cast<long double>(cap));
  H = std::min(H, static_cast<long double>(cap));
  if (L > H || (L == H && !(incl_l && incl_h))) return invalid_argument("the number bounds leave no value");
  Expr frac_zero = opt(seq({lit("."), rep(lit("0"), 1, max_frac_digits)}));
  Expr frac_nonzero = seq({lit("."), rep(lit("0"), 0, max_frac_digits - 1), digit_range('1', '9'),
                           rep(digit(), 0, max_frac_digits - 1)});
  auto pos_range = [&](uint64_t a, uint64_t z, bool incl_a, bool incl_z) -> std::optional<Expr> {
    std::vector<Expr> parts;
    if (a == z) {
      if (!(incl_a && incl_z)) return std::nullopt;
      return seq({lit(std::to_string(a)), frac_zero});
    }
    parts.push_back(seq({lit(std::to_string(a)), incl_a ? frac_any : frac_nonzero}));
    if (a + 1 <= z - 1) parts.push_back(seq({uint_range_expr(a + 1, z - 1), frac_any}));
    if (incl_z) parts.push_back(seq({lit(std::to_string(z)), frac_zero}));
    return alt(std::move(parts));
  };
  std::vector<Expr> parts;
  if (H > 0 || (H == 0 && incl_h)) {
    uint64_t a = L < 0 ? 0 : uint64_t(L);
    bool ia = L < 0 ? true : incl_l;
    if (auto e = pos_range(a, uint64_t(H), ia, incl_h)) parts.push_back(std::move(*e));
  }
  if (L < 0) {
    std::optional<Expr> e;
    if (H >= 0) {
      e = pos_range(0, uint64_t(-L), false, incl_l);
    } else {
      e = pos_range(uint64_t(-H), uint64_t(-L), incl_h, incl_l);
    }
    if (e) parts.push_back(seq({lit("-"), std::move(*e)}));
  }
  if (parts.empty()) return invalid_argument("the number bounds leave no value");
  return alt(std::move(parts));
}

namespace {
struct Format {
  const char* name;
  const char* regex;
  uint32_t min_len, max_len;
};
// Subsets of each format that the usual checkers accept (Python's date.fromisoformat, ipaddress, uuid.UUID,
// valijson's date/time regexes): real calendar dates (February up to 28), no leap seconds, no %-escapes in
// URIs.
constexpr const char* kDate =
    "[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1["
    "0-9]|2[0-8]))";
constexpr const char* kTime =
    "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
const Format kFormats[] = {
    {"date", kDate, 10, 10},
    {"time", kTime, 9, 21},
    {"date-time", nullptr, 20, 32},
    {"email",
     "[A-Za-z0-9]+([._+-][A-Za-z0-9]+)*@[A-Za-z0-9]+(-[A-Za-z0-9]+)*(\\.[A-Za-z0-9]+(-[A-Za-z0-9]+)*)*\\.[A-"
     "Za-z]{2,12}",
     6, UINT32_MAX},
    {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", 36, 36},
    {"uri",
     "[a-zA-Z][a-zA-Z0-9+.-]{0,15}://[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?(/"
     "[A-Za-z0-9._~!$&'()*+,;=:@-]*)*"
     "(\\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?(#[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?",
     4, UINT32_MAX},
    {"ipv4", "((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
     7, 15},
    {"ipv6", "([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}", 15, 39},
    {"hostname", "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*", 1, UINT32_MAX},
};
}  // namespace

const char* supported_formats() {
  return "date, time, date-time, email, uuid, uri, ipv4, ipv6, hostname";
}

std::optional<Expr> string_format_expr(std::string_view format) {
  RegexOptions ro;
  ro.json_string = true;
  for (const Format& f : kFormats) {
    if (format != f.name) continue;
    std::string re = f.regex ? f.regex : std::string("(") + kDate + ")T(" + kTime + ")";
    Result<Expr> e = regex_to_expr(re, ro);
    TAILOR_CHECK(e.ok()) << "built-in format regex for " << f.name << ": " << e.status().message();
    return std::move(e).value();
  }
  return std::nullopt;
}

std::pair<uint32_t, uint32_t> string_format_length(std::string_view format) {
  for (const Format& f : kFormats) {
    if (format == f.name) return {f.min_len, f.max_len};
  }
  return {0, UINT32_MAX};
}

}  // namespace tailor::grammar
