#include "grammar/regex.h"

#include <algorithm>

#include "grammar/utf8.h"

namespace tailor::grammar {

namespace {

constexpr uint32_t kMaxRepeat = 100000;
constexpr int kMaxDepth = 500;

CharSet printable_ascii() {
  return CharSet::range(0x20, 0x7E);
}
CharSet digit_set() {
  return CharSet::range('0', '9');
}
CharSet word_set() {
  CharSet s = CharSet::range('a', 'z');
  s.add('A', 'Z');
  s.add('0', '9');
  s.add('_', '_');
  return s;
}
CharSet space_set() {
  CharSet s = CharSet::of(' ');
  s.add('\t', '\r');  // \t \n \v \f \r
  return s;
}

// The regex AST before anchors are resolved against their position.
struct Node {
  enum Kind { empty, chars, seq, alt, repeat, anchor_start, anchor_end } kind = empty;
  CharSet set;
  std::vector<Node> items;
  uint32_t min = 0, max = 0;
  size_t pos = 0;
};

class RegexParser {
 public:
  RegexParser(std::string_view p, const RegexOptions& opt) : p_(p), opt_(opt) {}

  Result<Node> run() {
    Node n;
    TAILOR_RETURN_IF_ERROR(parse_alt(&n, 0));
    if (i_ < p_.size()) return error(i_, p_[i_] == ')' ? "unbalanced \")\"" : "unexpected character");
    return n;
  }

  Status error(size_t at, const std::string& msg) const {
    return invalid_argument(cat("regex \"", p_, "\" at offset ", at, ": ", msg));
  }

 private:
  bool more() const { return i_ < p_.size(); }
  char peek() const { return p_[i_]; }

  Status parse_alt(Node* out, int depth) {
    if (depth > kMaxDepth) return error(i_, "groups nested too deeply");
    Node a;
    a.kind = Node::alt;
    a.pos = i_;
    while (true) {
      Node s;
      TAILOR_RETURN_IF_ERROR(parse_seq(&s, depth));
      a.items.push_back(std::move(s));
      if (more() && peek() == '|') {
        ++i_;
        continue;
      }
      break;
    }
    *out = a.items.size() == 1 ? std::move(a.items[0]) : std::move(a);
    return {};
  }

  Status parse_seq(Node* out, int depth) {
    Node s;
    s.kind = Node::seq;
    s.pos = i_;
    while (more() && peek() != '|' && peek() != ')') {
      Node atom;
      size_t at = i_;
      TAILOR_RETURN_IF_ERROR(parse_atom(&atom, depth));
      bool quantified = false;
      while (more()) {
        uint32_t lo, hi;
        size_t qpos = i_;
        int got = parse_quantifier(&lo, &hi);
        if (got < 0) return error(qpos, "malformed repetition count");
        if (got == 0) break;
        if (quantified) return error(qpos, "nothing to repeat (a quantifier follows another quantifier)");
        quantified = true;
        if (more() && peek() == '?') {
          ++i_;  // lazy: same set of matches
        } else if (more() && peek() == '+') {
          return error(i_, "possessive quantifiers are not supported");
        }
        if (atom.kind == Node::anchor_start || atom.kind == Node::anchor_end) {
          return error(qpos, "a quantifier on an anchor is not supported");
        }
        Node r;
        r.kind = Node::repeat;
        r.min = lo;
        r.max = hi;
        r.pos = at;
        r.items.push_back(std::move(atom));
        atom = std::move(r);
      }
      s.items.push_back(std::move(atom));
    }
    *out = std::move(s);
    return {};
  }

  // Returns 1 and the bounds for a quantifier at i_, 0 if none (a `{` that is not a count is a literal), -1
  // on a malformed count.
  int parse_quantifier(uint32_t* lo, uint32_t* hi) {
    char c = peek();
    if (c == '*') return ++i_, *lo = 0, *hi = kUnbounded, 1;
    if (c == '+') return ++i_, *lo = 1, *hi = kUnbounded, 1;
    if (c == '?') return ++i_, *lo = 0, *hi = 1, 1;
    if (c != '{') return 0;
    size_t j = i_ + 1;
    auto num = [&](uint64_t* v) {
      size_t b = j;
      *v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        *v = std::min<uint64_t>(*v * 10 + uint64_t(p_[j] - '0'), uint64_t(kMaxRepeat) + 1);
        ++j;
      }
      return j > b;
    };
    uint64_t a = 0, b = 0;
    bool has_a = num(&a), has_b = false, comma = false;
    if (j < p_.size() && p_[j] == ',') {
      comma = true;
      ++j;
      has_b = num(&b);
    }
    if (j >= p_.size() || p_[j] != '}' || (!has_a && !has_b)) return 0;  // literal "{"
    ++j;
    if (!comma) b = a, has_b = true;
    if (!has_a) a = 0;
    if (a > kMaxRepeat || (has_b && b > kMaxRepeat)) return -1;
    if (has_b && b < a) return -1;
    i_ = j;
    *lo = uint32_t(a);
    *hi = has_b ? uint32_t(b) : kUnbounded;
    return 1;
  }

  Status parse_atom(Node* out, int depth) {
    size_t at = i_;
    char c = peek();
    out->pos = at;
    switch (c) {
      case '(': {
        ++i_;
        if (more() && peek() == '?') {
          ++i_;
          if (!more()) return error(at, "unterminated group");
          char k = peek();
          if (k == ':') {
            ++i_;
          } else if (k == 'P' && i_ + 1 < p_.size() && p_[i_ + 1] == '<') {
            i_ += 2;
            TAILOR_RETURN_IF_ERROR(skip_group_name(at));
          } else if (k == '<' && i_ + 1 < p_.size() && p_[i_ + 1] != '=' && p_[i_ + 1] != '!') {
            ++i_;
            TAILOR_RETURN_IF_ERROR(skip_group_name(at));
          } else if (k == '=' || k == '!' || k == '<') {
            return error(at, "lookahead/lookbehind assertions are not supported");
          } else {
            return error(at, "inline flags and other (?...) groups are not supported");
          }
        }
        TAILOR_RETURN_IF_ERROR(parse_alt(out, depth + 1));
        if (!more() || peek() != ')') return error(at, "\"(\" is never closed");
        ++i_;
        return {};
      }
      case '[':
        return parse_class(out);
      case '.': {
        ++i_;
        out->kind = Node::chars;
        if (opt_.ascii_safe) {
          out->set = printable_ascii();
        } else {
          out->set = CharSet::any().minus(CharSet::of('\n')).minus(CharSet::of('\r'));
        }
        return {};
      }
      case '^':
        ++i_;
        out->kind = Node::anchor_start;
        return {};
      case '$':
        ++i_;
        out->kind = Node::anchor_end;
        return {};
      case '*':
      case '+':
      case '?':
        return error(at, "nothing to repeat");
      case '\\':
        return parse_escape(out, false);
      default: {
        char32_t cp;
        size_t n = size_t(utf8_decode(p_, i_, &cp));
        if (n == 0) return error(at, "invalid UTF-8");
        i_ += n;
        out->kind = Node::chars;
        out->set = CharSet::of(cp);
        return {};
      }
    }
  }

  Status skip_group_name(size_t at) {
    while (more() && peek() != '>') ++i_;
    if (!more()) return error(at, "group name is not closed with \">\"");
    ++i_;
    return {};
  }

  int hex(char c) const {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  Status read_hex(size_t digits, size_t at, uint32_t* v) {
    *v = 0;
    for (size_t k = 0; k < digits; ++k) {
      if (!more() || hex(peek()) < 0) return error(at, cat("expected ", digits, " hex digits"));
      *v = *v * 16 + uint32_t(hex(p_[i_++]));
    }
    return {};
  }

  Status check_cp(uint32_t cp, size_t at) {
    if (cp > kMaxCodePoint) return error(at, "code point beyond U+10FFFF");
    if (cp >= 0xD800 && cp <= 0xDFFF) return error(at, "surrogate code points are not characters");
    return {};
  }

  // Parses an escape at i_ ('\\'). Sets out to a chars node (or an anchor outside classes).
  Status parse_escape(Node* out, bool in_class) {
    size_t at = i_++;
    if (!more()) return error(at, "pattern ends with a lone backslash");
    char e = p_[i_++];
    out->kind = Node::chars;
    out->pos = at;
    auto set_cp = [&](uint32_t cp) -> Status {
      TAILOR_RETURN_IF_ERROR(check_cp(cp, at));
      out->set = CharSet::of(cp);
      return {};
    };
    auto safe_complement = [&](const CharSet& s) {
      return opt_.ascii_safe ? printable_ascii().minus(s) : s.complement();
    };
    switch (e) {
      case 'd':
        out->set = digit_set();
        return {};
      case 'w':
        out->set = word_set();
        return {};
      case 's':
        out->set = space_set();
        return {};
      case 'D':
        out->set = safe_complement(digit_set());
        return {};
      case 'W':
        out->set = safe_complement(word_set());
        return {};
      case 'S':
        out->set = safe_complement(space_set());
        return {};
      case 'n':
        return set_cp('\n');
      case 'r':
        return set_cp('\r');
      case 't':
        return set_cp('\t');
      case 'f':
        return set_cp('\f');
      case 'v':
        return set_cp('\v');
      case '0':
        if (more() && peek() >= '0' && peek() <= '9') return error(at, "octal escapes are not supported");
        return set_cp(0);
      case 'b':
        if (in_class) return set_cp('\b');
        return error(at, "word boundaries (\\b) are not supported");
      case 'B':
        return error(at, "\\B (not a word boundary) is not supported");
      case 'A':
        if (in_class) return error(at, "\\A inside a class");
        out->kind = Node::anchor_start;
        return {};
      case 'Z':
      case 'z':
        if (in_class) return error(at, "\\Z inside a class");
        out->kind = Node::anchor_end;
        return {};
      case 'x': {
        uint32_t v;
        if (more() && peek() == '{') {
          ++i_;
          TAILOR_RETURN_IF_ERROR(read_braced_hex(at, &v));
        } else {
          TAILOR_RETURN_IF_ERROR(read_hex(2, at, &v));
        }
        return set_cp(v);
      }
      case 'u': {
        uint32_t v;
        if (more() && peek() == '{') {
          ++i_;
          TAILOR_RETURN_IF_ERROR(read_braced_hex(at, &v));
          return set_cp(v);
        }
        TAILOR_RETURN_IF_ERROR(read_hex(4, at, &v));
        if (v >= 0xD800 && v <= 0xDBFF && i_ + 1 < p_.size() && p_[i_] == '\\' && p_[i_ + 1] == 'u') {
          // A surrogate pair written as two escapes (JavaScript style).
          size_t save = i_;
          i_ += 2;
          uint32_t lo;
          if (read_hex(4, at, &lo).ok() && lo >= 0xDC00 && lo <= 0xDFFF) {
            return set_cp(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00));
          }
          i_ = save;
        }
        return set_cp(v);
      }
      case 'U': {
        uint32_t v;
        TAILOR_RETURN_IF_ERROR(read_hex(8, at, &v));
        return set_cp(v);
      }
      case 'c': {
        if (!more() || !((peek() >= 'a' && peek() <= 'z') || (peek() >= 'A' && peek() <= 'Z'))) {
          return error(at, "\\c must be followed by a letter");
        }
        return set_cp(uint32_t(p_[i_++]) % 32);
      }
      case 'p':
      case 'P': {
        if (!more() || peek() != '{') return error(at, "expected \\p{Category}");
        size_t close = p_.find('}', i_);
        if (close == std::string_view::npos) return error(at, "\\p{ is never closed");
        std::string_view name = p_.substr(i_ + 1, close - i_ - 1);
        i_ = close + 1;
        CharSet s;
        if (!unicode_category_set(name, &s)) {
          return error(at,
                       cat("unknown Unicode category \"", name, "\" (use L, Lu, Ll, N, Nd, P, S, Z, ...)"));
        }
        out->set = e == 'p' ? s : safe_complement(s);
        return {};
      }
      case 'k':
        return error(at, "backreferences are not supported");
      default:
        break;
    }
    if (e >= '1' && e <= '9') return error(at, "backreferences are not supported");
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) return error(at, cat("unknown escape \\", e));
    // Escaped punctuation or any other character stands for itself.
    --i_;
    char32_t cp;
    size_t n = size_t(utf8_decode(p_, i_, &cp));
    if (n == 0) return error(at, "invalid UTF-8");
    i_ += n;
    return set_cp(cp);
  }

  Status read_braced_hex(size_t at, uint32_t* v) {
    *v = 0;
    int digits = 0;
    while (more() && hex(peek()) >= 0 && digits < 8) {
      *v = *v * 16 + uint32_t(hex(p_[i_++]));
      ++digits;
    }
    if (digits == 0 || !more() || peek() != '}') return error(at, "expected hex digits and \"}\"");
    ++i_;
    return {};
  }

  Status parse_class(Node* out) {
    size_t at = i_++;
    bool negate = false;
    if (more() && peek() == '^') {
      negate = true;
      ++i_;
    }
    if (more() && peek() == ']') {
      // Python reads "[]a]" as a class holding "]"; ECMAScript reads "[]" as the empty class. Refuse the
      // ambiguity.
      return error(at, "\"]\" right after \"[\" means different things to different engines; write \\]");
    }
    CharSet set;
    while (true) {
      if (!more()) return error(at, "\"[\" is never closed");
      if (peek() == ']') {
        ++i_;
        break;
      }
      if (p_.substr(i_, 2) == "[:") return error(i_, "POSIX classes like [:alpha:] are not supported");
      size_t item_at = i_;
      Node lo;
      TAILOR_RETURN_IF_ERROR(class_item(&lo));
      bool single = lo.set.ranges().size() == 1 && lo.set.ranges()[0].lo == lo.set.ranges()[0].hi;
      if (more() && peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        if (!single) return error(item_at, "a class escape like \\d cannot start a range");
        ++i_;
        Node hi;
        size_t hi_at = i_;
        TAILOR_RETURN_IF_ERROR(class_item(&hi));
        bool hi_single = hi.set.ranges().size() == 1 && hi.set.ranges()[0].lo == hi.set.ranges()[0].hi;
        if (!hi_single) return error(hi_at, "a class escape like \\d cannot end a range");
        uint32_t a = lo.set.ranges()[0].lo, b = hi.set.ranges()[0].lo;
        if (b < a) return error(item_at, "range end is below its start");
        set.add(a, b);
      } else {
        set.add(lo.set);
      }
    }
    out->kind = Node::chars;
    out->pos = at;
    if (negate) {
      out->set = opt_.ascii_safe ? printable_ascii().minus(set) : set.complement();
    } else {
      out->set = std::move(set);
    }
    return {};
  }

  Status class_item(Node* out) {
    size_t at = i_;
    if (peek() == '\\') {
      TAILOR_RETURN_IF_ERROR(parse_escape(out, true));
      if (out->kind != Node::chars) return error(at, "anchors cannot appear in a class");
      return {};
    }
    char32_t cp;
    size_t n = size_t(utf8_decode(p_, i_, &cp));
    if (n == 0) return error(at, "invalid UTF-8");
    i_ += n;
    out->kind = Node::chars;
    out->set = CharSet::of(cp);
    return {};
  }

  std::string_view p_;
  const RegexOptions& opt_;
  size_t i_ = 0;
};

bool zero_width(const Node& n) {
  if (n.kind == Node::anchor_start || n.kind == Node::anchor_end || n.kind == Node::empty) return true;
  if (n.kind == Node::seq) {
    for (const Node& it : n.items) {
      if (!zero_width(it)) return false;
    }
    return true;
  }
  return false;
}

class Converter {
 public:
  Converter(std::string_view p, const RegexOptions& opt) : p_(p), opt_(opt) {}

  Result<Expr> convert(const Node& n, bool at_start, bool at_end) {
    switch (n.kind) {
      case Node::empty:
        return empty_expr();
      case Node::chars:
        if (n.set.empty()) {
          return invalid_argument(cat("regex \"", p_, "\" at offset ", n.pos,
                                      ": the character class matches no ",
                                      opt_.ascii_safe ? "printable ASCII " : "", "character"));
        }
        return opt_.json_string ? json_string_char(n.set) : chars(n.set);
      case Node::anchor_start:
        if (!at_start) return anchor_error(n, "^");
        return empty_expr();
      case Node::anchor_end:
        if (!at_end) return anchor_error(n, "$");
        return empty_expr();
      case Node::seq: {
        std::vector<Expr> items;
        for (size_t k = 0; k < n.items.size(); ++k) {
          bool s = at_start, e = at_end;
          for (size_t j = 0; j < k && s; ++j) s = zero_width(n.items[j]);
          for (size_t j = k + 1; j < n.items.size() && e; ++j) e = zero_width(n.items[j]);
          TAILOR_ASSIGN_OR_RETURN(Expr x, convert(n.items[k], s, e));
          items.push_back(std::move(x));
        }
        return seq(std::move(items));
      }
      case Node::alt: {
        std::vector<Expr> items;
        for (const Node& it : n.items) {
          TAILOR_ASSIGN_OR_RETURN(Expr x, convert(it, at_start, at_end));
          items.push_back(std::move(x));
        }
        return alt(std::move(items));
      }
      case Node::repeat: {
        bool once = n.max <= 1;
        TAILOR_ASSIGN_OR_RETURN(Expr x, convert(n.items[0], at_start && once, at_end && once));
        return rep(std::move(x), n.min, n.max);
      }
    }
    return empty_expr();
  }

 private:
  Status anchor_error(const Node& n, const char* what) {
    return invalid_argument(cat("regex \"", p_, "\" at offset ", n.pos, ": anchor ", what,
                                " is only supported at the start (^) or end ($) of the pattern"));
  }
  std::string_view p_;
  const RegexOptions& opt_;
};

std::pair<uint64_t, uint64_t> length_bounds(const Node& n) {
  constexpr uint64_t kInfLen = UINT64_MAX / 4;
  switch (n.kind) {
    case Node::chars:
      return {1, 1};
    case Node::seq: {
      uint64_t lo = 0, hi = 0;
      for (const Node& it : n.items) {
        auto [a, b] = length_bounds(it);
        lo = std::min(lo + a, kInfLen);
        hi = std::min(hi + b, kInfLen);
      }
      return {lo, hi};
    }
    case Node::alt: {
      uint64_t lo = kInfLen, hi = 0;
      for (const Node& it : n.items) {
        auto [a, b] = length_bounds(it);
        lo = std::min(lo, a);
        hi = std::max(hi, b);
      }
      return {n.items.empty() ? 0 : lo, hi};
    }
    case Node::repeat: {
      auto [a, b] = length_bounds(n.items[0]);
      uint64_t lo = std::min<uint64_t>(a * n.min, kInfLen);
      uint64_t hi = n.max == kUnbounded ? (b == 0 ? 0 : kInfLen) : std::min<uint64_t>(b * n.max, kInfLen);
      return {lo, hi};
    }
    default:
      return {0, 0};
  }
}

}  // namespace

Result<std::pair<uint32_t, uint32_t>> regex_length_bounds(std::string_view pattern) {
  RegexOptions opt;
  RegexParser parser(pattern, opt);
  TAILOR_ASSIGN_OR_RETURN(Node n, parser.run());
  auto [lo, hi] = length_bounds(n);
  auto clamp32 = [](uint64_t v) { return v >= UINT32_MAX ? UINT32_MAX : uint32_t(v); };
  return std::make_pair(clamp32(lo), clamp32(hi));
}

Expr json_string_char(const CharSet& set) {
  CharSet must_escape = CharSet::range(0, 0x1F);
  must_escape.add('"', '"');
  must_escape.add('\\', '\\');
  std::vector<Expr> alts;
  CharSet raw = set.minus(must_escape);
  if (!raw.empty()) alts.push_back(chars(raw));
  CharSet escaped = set.intersect(must_escape);
  for (CodeRange r : escaped.ranges()) {
    for (uint32_t cp = r.lo; cp <= r.hi; ++cp) {
      switch (cp) {
        case '"':
          alts.push_back(lit("\\\""));
          break;
        case '\\':
          alts.push_back(lit("\\\\"));
          break;
        case '\n':
          alts.push_back(lit("\\n"));
          break;
        case '\r':
          alts.push_back(lit("\\r"));
          break;
        case '\t':
          alts.push_back(lit("\\t"));
          break;
        case '\b':
          alts.push_back(lit("\\b"));
          break;
        case '\f':
          alts.push_back(lit("\\f"));
          break;
        default: {
          static const char* hex = "0123456789abcdef";
          std::string e = "\\u00";
          e += hex[cp >> 4];
          e += hex[cp & 15];
          alts.push_back(lit(e));
        }
      }
    }
  }
  return alt(std::move(alts));
}

Result<Expr> regex_to_expr(std::string_view pattern, const RegexOptions& opt) {
  RegexParser parser(pattern, opt);
  TAILOR_ASSIGN_OR_RETURN(Node n, parser.run());
  Converter conv(pattern, opt);
  return conv.convert(n, true, true);
}

Result<Grammar> regex_to_grammar(std::string_view pattern, const RegexOptions& opt) {
  TAILOR_ASSIGN_OR_RETURN(Expr e, regex_to_expr(pattern, opt));
  Grammar g;
  uint32_t root = g.add_rule("root");
  g.rules[root].body = std::move(e);
  g.root = root;
  return g;
}

}  // namespace tailor::grammar
