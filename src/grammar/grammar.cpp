#include "grammar/grammar.h"

#include <algorithm>
#include <unordered_set>

#include "grammar/utf8.h"

namespace tailor::grammar {

// ---- CharSet ----

CharSet CharSet::range(uint32_t lo, uint32_t hi) {
  CharSet s;
  s.add(lo, hi);
  return s;
}

CharSet CharSet::any() {
  return range(0, kMaxCodePoint);
}

CharSet CharSet::from_ranges(std::vector<CodeRange> ranges) {
  CharSet s;
  for (CodeRange& r : ranges) r.hi = std::min(r.hi, kMaxCodePoint);
  std::erase_if(ranges, [](CodeRange r) { return r.lo > r.hi; });
  s.ranges_ = std::move(ranges);
  s.normalize();
  return s;
}

void CharSet::add(uint32_t lo, uint32_t hi) {
  if (lo > hi || lo > kMaxCodePoint) return;
  hi = std::min(hi, kMaxCodePoint);
  ranges_.push_back({lo, hi});
  normalize();
}

void CharSet::add(const CharSet& o) {
  ranges_.insert(ranges_.end(), o.ranges_.begin(), o.ranges_.end());
  normalize();
}

void CharSet::normalize() {
  // Surrogates are not characters: cut them out so that equal sets compare equal.
  std::vector<CodeRange> cut;
  cut.reserve(ranges_.size() + 1);
  for (CodeRange r : ranges_) {
    if (r.hi < 0xD800 || r.lo > 0xDFFF) {
      cut.push_back(r);
      continue;
    }
    if (r.lo < 0xD800) cut.push_back({r.lo, 0xD7FF});
    if (r.hi > 0xDFFF) cut.push_back({0xE000, r.hi});
  }
  std::sort(cut.begin(), cut.end(), [](CodeRange a, CodeRange b) { return a.lo < b.lo; });
  ranges_.clear();
  for (CodeRange r : cut) {
    // Ranges that touch across the surrogate gap stay separate; that is fine (the gap has no members).
    if (!ranges_.empty() && uint64_t(r.lo) <= uint64_t(ranges_.back().hi) + 1) {
      ranges_.back().hi = std::max(ranges_.back().hi, r.hi);
    } else {
      ranges_.push_back(r);
    }
  }
}

CharSet CharSet::complement() const {
  CharSet out;
  uint32_t next = 0;
  for (CodeRange r : ranges_) {
    if (r.lo > next) out.ranges_.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodePoint) out.ranges_.push_back({next, kMaxCodePoint});
  out.normalize();
  return out;
}

CharSet CharSet::intersect(const CharSet& o) const {
  CharSet out;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < o.ranges_.size()) {
    uint32_t lo = std::max(ranges_[i].lo, o.ranges_[j].lo);
    uint32_t hi = std::min(ranges_[i].hi, o.ranges_[j].hi);
    if (lo <= hi) out.ranges_.push_back({lo, hi});
    if (ranges_[i].hi < o.ranges_[j].hi) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

bool CharSet::contains(uint32_t cp) const {
  auto it =
      std::upper_bound(ranges_.begin(), ranges_.end(), cp, [](uint32_t v, CodeRange r) { return v < r.lo; });
  if (it == ranges_.begin()) return false;
  --it;
  return cp <= it->hi;
}

uint64_t CharSet::count() const {
  uint64_t n = 0;
  for (CodeRange r : ranges_) n += uint64_t(r.hi) - r.lo + 1;
  return n;
}

// ---- builders ----

Expr empty_expr() {
  return Expr{};
}

Expr lit(std::string_view bytes) {
  if (bytes.empty()) return empty_expr();
  Expr e;
  e.kind = ExprKind::literal;
  e.text = std::string(bytes);
  return e;
}

Expr chars(CharSet set) {
  Expr e;
  e.kind = ExprKind::char_set;
  e.chars = std::move(set);
  return e;
}

Expr bytes_in(uint8_t lo, uint8_t hi) {
  Expr e;
  e.kind = ExprKind::byte_set;
  e.bytes.push_back({lo, hi});
  return e;
}

Expr seq(std::vector<Expr> items) {
  std::vector<Expr> flat;
  for (Expr& it : items) {
    if (it.kind == ExprKind::empty) continue;
    if (it.kind == ExprKind::seq) {
      for (Expr& sub : it.items) flat.push_back(std::move(sub));
    } else if (it.kind == ExprKind::literal && !flat.empty() && flat.back().kind == ExprKind::literal) {
      flat.back().text += it.text;  // adjacent literals merge
    } else {
      flat.push_back(std::move(it));
    }
  }
  if (flat.empty()) return empty_expr();
  if (flat.size() == 1) return std::move(flat[0]);
  Expr e;
  e.kind = ExprKind::seq;
  e.items = std::move(flat);
  return e;
}

Expr alt(std::vector<Expr> items) {
  std::vector<Expr> flat;
  for (Expr& it : items) {
    if (it.kind == ExprKind::alt) {
      for (Expr& sub : it.items) flat.push_back(std::move(sub));
    } else {
      flat.push_back(std::move(it));
    }
  }
  if (flat.size() == 1) return std::move(flat[0]);
  Expr e;
  e.kind = ExprKind::alt;  // an alt of zero items matches nothing
  e.items = std::move(flat);
  return e;
}

Expr rep(Expr item, uint32_t min, uint32_t max) {
  if (max == 0) return empty_expr();
  if (min == 1 && max == 1) return item;
  if (item.kind == ExprKind::empty) return item;
  Expr e;
  e.kind = ExprKind::repeat;
  e.min = min;
  e.max = max;
  e.items.push_back(std::move(item));
  return e;
}

Expr ref(uint32_t rule) {
  Expr e;
  e.kind = ExprKind::rule_ref;
  e.rule = rule;
  return e;
}

// ---- Grammar ----

uint32_t Grammar::add_rule(std::string name, InlineHint hint) {
  std::string clean;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    clean += ok ? c : '_';
  }
  if (clean.empty() || (clean[0] >= '0' && clean[0] <= '9') || clean[0] == '-') clean = "r_" + clean;
  std::string unique = clean;
  for (int k = 2; find_rule(unique) != UINT32_MAX; ++k) unique = cat(clean, "_", k);
  rules.push_back(Rule{unique, empty_expr(), hint});
  return uint32_t(rules.size() - 1);
}

uint32_t Grammar::find_rule(std::string_view name) const {
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].name == name) return uint32_t(i);
  }
  return UINT32_MAX;
}

namespace {
Status validate_expr(const Expr& e, const Grammar& g, const Rule& r) {
  switch (e.kind) {
    case ExprKind::rule_ref:
      if (e.rule >= g.rules.size()) {
        return internal_error(
            cat("rule ", r.name, " references rule #", e.rule, " but there are ", g.rules.size()));
      }
      return {};
    case ExprKind::repeat:
      if (e.items.size() != 1 || e.min > e.max) {
        return internal_error(cat("rule ", r.name, ": malformed repetition {", e.min, ",", e.max, "}"));
      }
      break;
    case ExprKind::byte_set:
      for (CodeRange b : e.bytes) {
        if (b.lo > b.hi || b.hi > 255)
          return internal_error(cat("rule ", r.name, ": byte range out of 0..255"));
      }
      break;
    default:
      break;
  }
  for (const Expr& it : e.items) TAILOR_RETURN_IF_ERROR(validate_expr(it, g, r));
  return {};
}

void append_code_point_escaped(std::string& out, uint32_t cp, bool in_class) {
  static const char* hex = "0123456789abcdef";
  auto esc_hex = [&](int digits, char tag) {
    out += '\\';
    out += tag;
    for (int k = digits - 1; k >= 0; --k) out += hex[(cp >> (4 * k)) & 15];
  };
  switch (cp) {
    case '\n':
      out += "\\n";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\\':
      out += "\\\\";
      return;
    default:
      break;
  }
  if (!in_class && cp == '"') {
    out += "\\\"";
    return;
  }
  if (in_class && (cp == ']' || cp == '^' || cp == '-' || cp == '[')) {
    out += '\\';
    out += char(cp);
    return;
  }
  if (cp < 0x20 || cp == 0x7F) return esc_hex(2, 'x');
  if (cp >= 0x80 && cp < 0xA0) return esc_hex(4, 'u');  // C1 controls: keep the text printable
  if (cp > 0xFFFF) return esc_hex(8, 'U');
  utf8_append(out, cp);
}

void print_charset(std::string& out, const CharSet& set) {
  if (set == CharSet::any()) {
    out += '.';
    return;
  }
  CharSet comp = set.complement();
  bool negate = comp.ranges().size() < set.ranges().size() && !comp.empty();
  const CharSet& body = negate ? comp : set;
  out += negate ? "[^" : "[";
  for (CodeRange r : body.ranges()) {
    append_code_point_escaped(out, r.lo, true);
    if (r.hi != r.lo) {
      if (r.hi != r.lo + 1) out += '-';
      append_code_point_escaped(out, r.hi, true);
    }
  }
  out += ']';
}

void print_literal(std::string& out, std::string_view bytes) {
  // Valid UTF-8 prints as a string; stray bytes print as %xHH (the text format's raw-byte syntax).
  bool in_string = false;
  size_t i = 0;
  bool first = true;
  while (i < bytes.size()) {
    char32_t cp = 0;
    size_t n = size_t(utf8_decode(bytes, i, &cp));
    if (n > 0) {
      if (!in_string) {
        if (!first) out += ' ';
        out += '"';
        in_string = true;
      }
      append_code_point_escaped(out, cp, false);
      i += n;
    } else {
      if (in_string) out += '"';
      in_string = false;
      if (!first) out += ' ';
      static const char* hex = "0123456789ABCDEF";
      uint8_t b = uint8_t(bytes[i]);
      out += "%x";
      out += hex[b >> 4];
      out += hex[b & 15];
      ++i;
    }
    first = false;
  }
  if (in_string) out += '"';
}

void print_expr(std::string& out, const Expr& e, const Grammar& g, int prec) {
  // prec: 0 = alternation context, 1 = sequence item, 2 = quantified atom
  switch (e.kind) {
    case ExprKind::empty:
      out += "\"\"";
      return;
    case ExprKind::literal: {
      // Valid UTF-8 prints as one string atom; stray bytes make several atoms, which need parentheses.
      bool multi = false;
      std::string_view rest = e.text;
      while (!rest.empty()) {
        char32_t cp;
        size_t k = size_t(utf8_decode(rest, 0, &cp));
        if (k == 0) {
          multi = true;
          break;
        }
        rest.remove_prefix(k);
      }
      if (multi && prec >= 1) out += '(';
      print_literal(out, e.text);
      if (multi && prec >= 1) out += ')';
      return;
    }
    case ExprKind::char_set:
      if (e.chars.empty()) {
        out += "[^\\x00-\\U0010ffff]";  // matches nothing
      } else {
        print_charset(out, e.chars);
      }
      return;
    case ExprKind::byte_set: {
      static const char* hex = "0123456789ABCDEF";
      bool several = e.bytes.size() > 1;
      if (several) out += '(';
      for (size_t i = 0; i < e.bytes.size(); ++i) {
        if (i) out += " | ";
        out += "%x";
        out += hex[e.bytes[i].lo >> 4];
        out += hex[e.bytes[i].lo & 15];
        if (e.bytes[i].hi != e.bytes[i].lo) {
          out += '-';
          out += hex[e.bytes[i].hi >> 4];
          out += hex[e.bytes[i].hi & 15];
        }
      }
      if (several) out += ')';
      return;
    }
    case ExprKind::seq:
      if (prec > 1) out += '(';
      for (size_t i = 0; i < e.items.size(); ++i) {
        if (i) out += ' ';
        print_expr(out, e.items[i], g, 1);
      }
      if (prec > 1) out += ')';
      return;
    case ExprKind::alt:
      if (e.items.empty()) {
        out += "[^\\x00-\\U0010ffff]";
        return;
      }
      if (prec > 0) out += '(';
      for (size_t i = 0; i < e.items.size(); ++i) {
        if (i) out += " | ";
        print_expr(out, e.items[i], g, 1);
      }
      if (prec > 0) out += ')';
      return;
    case ExprKind::repeat: {
      const Expr& it = e.items[0];
      bool wrap = it.kind == ExprKind::repeat;  // x** is not valid syntax
      if (wrap) out += '(';
      print_expr(out, it, g, 2);
      if (wrap) out += ')';
      if (e.min == 0 && e.max == kUnbounded) {
        out += '*';
      } else if (e.min == 1 && e.max == kUnbounded) {
        out += '+';
      } else if (e.min == 0 && e.max == 1) {
        out += '?';
      } else if (e.max == kUnbounded) {
        out += cat("{", e.min, ",}");
      } else if (e.min == e.max) {
        out += cat("{", e.min, "}");
      } else {
        out += cat("{", e.min, ",", e.max, "}");
      }
      return;
    }
    case ExprKind::rule_ref:
      out += e.rule < g.rules.size() ? g.rules[e.rule].name : cat("<bad rule #", e.rule, ">");
      return;
  }
}
}  // namespace

Status Grammar::validate() const {
  if (rules.empty()) return invalid_argument("grammar has no rules");
  if (root >= rules.size()) return internal_error(cat("grammar root #", root, " out of range"));
  std::unordered_set<std::string> names;
  for (const Rule& r : rules) {
    if (!names.insert(r.name).second) return internal_error(cat("grammar has two rules named ", r.name));
    TAILOR_RETURN_IF_ERROR(validate_expr(r.body, *this, r));
  }
  return {};
}

std::string expr_to_text(const Expr& e, const Grammar& g) {
  std::string out;
  print_expr(out, e, g, 0);
  return out;
}

std::string Grammar::to_text() const {
  std::string out;
  // Root first so that the text reads top-down; the parser finds it by name.
  std::vector<size_t> order;
  if (root < rules.size()) order.push_back(root);
  for (size_t i = 0; i < rules.size(); ++i) {
    if (i != root) order.push_back(i);
  }
  for (size_t i : order) {
    const Rule& r = rules[i];
    out += r.name;
    out += " ::= ";
    print_expr(out, r.body, *this, 0);
    if (r.hint == InlineHint::call) out += "  # @call";
    out += '\n';
  }
  return out;
}

}  // namespace tailor::grammar
