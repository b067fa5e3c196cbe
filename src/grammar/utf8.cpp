#include "grammar/utf8.h"

#include <utf8proc.h>

#include <mutex>

namespace tailor::grammar {

namespace {
int encoded_len(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

void encode_fixed(uint32_t cp, int n, uint8_t* out) {
  std::string s;
  utf8_append(s, cp);
  for (int i = 0; i < n; ++i) out[i] = uint8_t(s[i]);
}

// Splits until the block [lo, hi] has one encoding length and each continuation position spans its full
// range whenever an earlier position varies; then the block is a product of byte ranges.
void split(uint32_t lo, uint32_t hi, std::vector<Utf8Seq>& out) {
  if (lo > hi) return;
  // Surrogates have no encoding.
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) split(lo, 0xD7FF, out);
    if (hi > 0xDFFF) split(0xE000, hi, out);
    return;
  }
  static const uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t b : bounds) {
    if (lo <= b && hi > b) {
      split(lo, b, out);
      split(b + 1, hi, out);
      return;
    }
  }
  int n = encoded_len(lo);
  for (int i = 1; i < n; ++i) {
    uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split(lo, lo | m, out);
        split((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        split(lo, (hi & ~m) - 1, out);
        split(hi & ~m, hi, out);
        return;
      }
    }
  }
  Utf8Seq s;
  s.n = uint8_t(n);
  encode_fixed(lo, n, s.lo.data());
  encode_fixed(hi, n, s.hi.data());
  out.push_back(s);
}

struct CategoryTable {
  std::vector<CharSet> by_cat;  // index: utf8proc category
};

const CategoryTable& category_table() {
  static CategoryTable table;
  static std::once_flag once;
  std::call_once(once, [] {
    table.by_cat.resize(30);
    std::vector<std::vector<CodeRange>> ranges(30);
    int prev_cat = -1;
    uint32_t start = 0;
    for (uint32_t cp = 0; cp <= kMaxCodePoint + 1; ++cp) {
      int c = cp <= kMaxCodePoint ? int(utf8proc_category(int32_t(cp))) : -2;
      if (c != prev_cat) {
        if (prev_cat >= 0 && prev_cat < 30) ranges[prev_cat].push_back({start, cp - 1});
        prev_cat = c;
        start = cp;
      }
    }
    for (int c = 0; c < 30; ++c) table.by_cat[c] = CharSet::from_ranges(std::move(ranges[c]));
  });
  return table;
}
}  // namespace

void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<Utf8Seq>& out) {
  if (hi > kMaxCodePoint) hi = kMaxCodePoint;
  split(lo, hi, out);
}

bool unicode_category_set(std::string_view name, CharSet* out) {
  struct Entry {
    const char* name;
    const char* long_name;
    std::vector<int> cats;
  };
  static const std::vector<Entry> entries = {
      {"L", "Letter", {1, 2, 3, 4, 5}},
      {"Lu", "Uppercase_Letter", {1}},
      {"Ll", "Lowercase_Letter", {2}},
      {"Lt", "Titlecase_Letter", {3}},
      {"Lm", "Modifier_Letter", {4}},
      {"Lo", "Other_Letter", {5}},
      {"M", "Mark", {6, 7, 8}},
      {"Mn", "Nonspacing_Mark", {6}},
      {"Mc", "Spacing_Mark", {7}},
      {"Me", "Enclosing_Mark", {8}},
      {"N", "Number", {9, 10, 11}},
      {"Nd", "Decimal_Number", {9}},
      {"Nl", "Letter_Number", {10}},
      {"No", "Other_Number", {11}},
      {"P", "Punctuation", {12, 13, 14, 15, 16, 17, 18}},
      {"Pc", "Connector_Punctuation", {12}},
      {"Pd", "Dash_Punctuation", {13}},
      {"Ps", "Open_Punctuation", {14}},
      {"Pe", "Close_Punctuation", {15}},
      {"Pi", "Initial_Punctuation", {16}},
      {"Pf", "Final_Punctuation", {17}},
      {"Po", "Other_Punctuation", {18}},
      {"S", "Symbol", {19, 20, 21, 22}},
      {"Sm", "Math_Symbol", {19}},
      {"Sc", "Currency_Symbol", {20}},
      {"Sk", "Modifier_Symbol", {21}},
      {"So", "Other_Symbol", {22}},
      {"Z", "Separator", {23, 24, 25}},
      {"Zs", "Space_Separator", {23}},
      {"Zl", "Line_Separator", {24}},
      {"Zp", "Paragraph_Separator", {25}},
      {"C", "Other", {0, 26, 27, 29}},
      {"Cc", "Control", {26}},
      {"Cf", "Format", {27}},
      {"Co", "Private_Use", {29}},
      {"Cn", "Unassigned", {0}},
  };
  for (const Entry& e : entries) {
    if (name == e.name || name == e.long_name) {
      const CategoryTable& t = category_table();
      CharSet s;
      for (int c : e.cats) s.add(t.by_cat[c]);
      *out = std::move(s);
      return true;
    }
  }
  return false;
}

}  // namespace tailor::grammar
