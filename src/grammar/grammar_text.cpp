#include "grammar/grammar_text.h"

#include <unordered_map>

#include "grammar/utf8.h"

namespace tailor::grammar {

namespace {

constexpr uint32_t kMaxRepeat = 100000;  // larger counts are a typo or an attack; the automaton would explode
constexpr int kMaxNesting = 200;

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<Grammar> run() {
    skip_space();
    if (pos_ >= s_.size()) return error("the grammar is empty; write at least `root ::= ...`");
    while (true) {
      skip_space();
      if (pos_ >= s_.size()) break;
      size_t name_pos = pos_;
      std::string name = read_name();
      if (name.empty()) return error(cat("expected a rule name, found ", describe_here()));
      skip_space();
      if (s_.substr(pos_, 3) != "::=") {
        return error(cat("expected \"::=\" after rule name \"", name, "\", found ", describe_here()));
      }
      pos_ += 3;
      uint32_t id = rule_id(name, name_pos);
      if (defined_[id]) return error_at(name_pos, cat("rule \"", name, "\" is defined twice"));
      defined_[id] = true;
      def_order_.push_back(id);
      Expr body;
      TAILOR_RETURN_IF_ERROR(parse_alt(&body, 0));
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ')') return error("unbalanced \")\"");
      g_.rules[id].body = std::move(body);
    }
    for (size_t i = 0; i < g_.rules.size(); ++i) {
      if (!defined_[i]) {
        return error_at(first_use_[i], cat("rule \"", g_.rules[i].name, "\" is used but never defined"));
      }
    }
    // Rules in the order they are defined (not first mentioned), so that printing and re-parsing is stable.
    std::vector<uint32_t> remap(g_.rules.size());
    Grammar out;
    for (uint32_t k = 0; k < def_order_.size(); ++k) remap[def_order_[k]] = k;
    for (uint32_t id : def_order_) out.rules.push_back(std::move(g_.rules[id]));
    for (Rule& r : out.rules) remap_refs(r.body, remap);
    uint32_t root = out.find_rule("root");
    if (root == UINT32_MAX) return invalid_argument("grammar: no rule named \"root\" (the start rule)");
    out.root = root;
    TAILOR_RETURN_IF_ERROR(out.validate());
    return out;
  }

 private:
  // ---- errors ----
  std::pair<int, int> line_col(size_t at) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return {line, col};
  }
  Status error_at(size_t at, const std::string& msg) const {
    auto [line, col] = line_col(at);
    return invalid_argument(cat("grammar line ", line, ":", col, ": ", msg));
  }
  Status error(const std::string& msg) const { return error_at(pos_, msg); }
  std::string describe_here() const {
    if (pos_ >= s_.size()) return "the end of the text";
    char32_t cp;
    size_t n = size_t(utf8_decode(s_, pos_, &cp));
    if (n == 0) return cat("byte 0x", std::hex, int(uint8_t(s_[pos_])));
    if (cp < 0x20) return cat("control character 0x", std::hex, uint32_t(cp));
    return cat("\"", s_.substr(pos_, n), "\"");
  }

  // ---- lexing ----
  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  std::string read_name() {
    size_t b = pos_;
    if (pos_ < s_.size() && is_name_start(s_[pos_])) {
      while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    }
    return std::string(s_.substr(b, pos_ - b));
  }
  // At a name followed by "::=" (the start of the next rule)?
  bool at_rule_start() {
    size_t save = pos_;
    std::string name = read_name();
    bool yes = false;
    if (!name.empty()) {
      skip_space();
      yes = s_.substr(pos_, 3) == "::=";
    }
    pos_ = save;
    return yes;
  }
  uint32_t rule_id(const std::string& name, size_t at) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    uint32_t id = uint32_t(g_.rules.size());
    g_.rules.push_back(Rule{name, empty_expr(), InlineHint::automatic});
    defined_.push_back(false);
    first_use_.push_back(at);
    ids_[name] = id;
    return id;
  }

  // Reads one (possibly escaped) code point inside a string or class. `quote` is the closing delimiter.
  Status read_char(uint32_t* cp) {
    if (pos_ >= s_.size()) return error("unexpected end of text inside a string or character class");
    char c = s_[pos_];
    if (c != '\\') {
      char32_t c32;
      size_t n = size_t(utf8_decode(s_, pos_, &c32));
      if (n == 0) return error(cat("invalid UTF-8 (", describe_here(), ")"));
      *cp = uint32_t(c32);
      pos_ += n;
      return {};
    }
    size_t esc = pos_;
    ++pos_;
    if (pos_ >= s_.size()) return error("unexpected end of text after \"\\\"");
    char e = s_[pos_++];
    auto read_hex = [&](int digits) -> Status {
      uint32_t v = 0;
      for (int i = 0; i < digits; ++i) {
        int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
        if (h < 0) return error_at(esc, cat("escape \\", e, " needs ", digits, " hex digits"));
        v = v * 16 + uint32_t(h);
        ++pos_;
      }
      *cp = v;
      return {};
    };
    switch (e) {
      case 'n':
        *cp = '\n';
        break;
      case 'r':
        *cp = '\r';
        break;
      case 't':
        *cp = '\t';
        break;
      case 'f':
        *cp = '\f';
        break;
      case 'v':
        *cp = '\v';
        break;
      case '0':
        *cp = 0;
        break;
      case '\\':
      case '"':
      case '\'':
      case '[':
      case ']':
      case '-':
      case '^':
      case '/':
      case '.':
      case '(':
      case ')':
      case '|':
      case '*':
      case '+':
      case '?':
      case '{':
      case '}':
      case '#':
      case ' ':
        *cp = uint8_t(e);
        break;
      case 'x':
        TAILOR_RETURN_IF_ERROR(read_hex(2));
        break;
      case 'U':
        TAILOR_RETURN_IF_ERROR(read_hex(8));
        break;
      case 'u':
        if (pos_ < s_.size() && s_[pos_] == '{') {
          ++pos_;
          uint32_t v = 0;
          int digits = 0;
          while (pos_ < s_.size() && hex_value(s_[pos_]) >= 0 && digits < 8) {
            v = v * 16 + uint32_t(hex_value(s_[pos_++]));
            ++digits;
          }
          if (digits == 0 || pos_ >= s_.size() || s_[pos_] != '}') {
            return error_at(esc, "escape \\u{...} needs 1 to 6 hex digits and a closing \"}\"");
          }
          ++pos_;
          *cp = v;
        } else {
          TAILOR_RETURN_IF_ERROR(read_hex(4));
        }
        break;
      default:
        return error_at(esc, cat("unknown escape \"\\", e, "\" (use \\\\ for a backslash)"));
    }
    if (*cp > kMaxCodePoint) return error_at(esc, cat("code point 0x", std::hex, *cp, " is beyond U+10FFFF"));
    if (*cp >= 0xD800 && *cp <= 0xDFFF) {
      return error_at(esc, cat("code point U+", std::hex, *cp, " is a surrogate, which UTF-8 cannot encode"));
    }
    return {};
  }

  // ---- grammar ----
  Status parse_alt(Expr* out, int depth) {
    if (depth > kMaxNesting) return error("groups nested too deeply");
    std::vector<Expr> alts;
    while (true) {
      Expr s;
      TAILOR_RETURN_IF_ERROR(parse_seq(&s, depth));
      alts.push_back(std::move(s));
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    *out = alt(std::move(alts));
    return {};
  }

  Status parse_seq(Expr* out, int depth) {
    std::vector<Expr> items;
    while (true) {
      skip_space();
      if (pos_ >= s_.size()) break;
      char c = s_[pos_];
      if (c == '|' || c == ')') break;
      if (is_name_start(c) && at_rule_start()) break;
      Expr atom;
      TAILOR_RETURN_IF_ERROR(parse_atom(&atom, depth));
      TAILOR_RETURN_IF_ERROR(parse_quantifiers(&atom));
      items.push_back(std::move(atom));
    }
    *out = seq(std::move(items));
    return {};
  }

  Status parse_quantifiers(Expr* atom) {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '*') {
        ++pos_;
        *atom = star(std::move(*atom));
      } else if (c == '+') {
        ++pos_;
        *atom = plus(std::move(*atom));
      } else if (c == '?') {
        ++pos_;
        *atom = opt(std::move(*atom));
      } else if (c == '{') {
        size_t at = pos_++;
        uint32_t lo = 0, hi = 0;
        bool has_lo = read_count(&lo), has_hi = false;
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          has_hi = read_count(&hi);
          if (!has_hi) hi = kUnbounded;
          if (!has_lo) lo = 0;
        } else {
          if (!has_lo) return error_at(at, "expected a count in {m}, {m,}, {m,n} or {,n}");
          hi = lo;
        }
        if (pos_ >= s_.size() || s_[pos_] != '}')
          return error_at(at, "expected \"}\" to close the repetition");
        ++pos_;
        if ((has_lo && lo > kMaxRepeat) || (hi != kUnbounded && hi > kMaxRepeat)) {
          return error_at(at, cat("repetition count above the limit of ", kMaxRepeat));
        }
        if (hi < lo) return error_at(at, cat("repetition {", lo, ",", hi, "} has max below min"));
        *atom = rep(std::move(*atom), lo, hi);
      } else {
        break;
      }
    }
    return {};
  }

  bool read_count(uint32_t* v) {
    size_t b = pos_;
    uint64_t x = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      x = std::min<uint64_t>(x * 10 + uint64_t(s_[pos_] - '0'), uint64_t(kMaxRepeat) + 1);
      ++pos_;
    }
    *v = uint32_t(x);
    return pos_ > b;
  }

  Status parse_atom(Expr* out, int depth) {
    char c = s_[pos_];
    if (c == '"' || c == '\'') {
      char q = c;
      ++pos_;
      std::string bytes;
      while (true) {
        if (pos_ >= s_.size()) return error(cat("string not closed: expected ", q));
        if (s_[pos_] == q) {
          ++pos_;
          break;
        }
        if (s_[pos_] == '\n') return error("newline inside a string (write \\n)");
        uint32_t cp;
        TAILOR_RETURN_IF_ERROR(read_char(&cp));
        utf8_append(bytes, cp);
      }
      *out = lit(bytes);
      return {};
    }
    if (c == '[') return parse_class(out);
    if (c == '.') {
      ++pos_;
      *out = chars(CharSet::any());
      return {};
    }
    if (c == '(') {
      size_t open = pos_++;
      TAILOR_RETURN_IF_ERROR(parse_alt(out, depth + 1));
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') return error_at(open, "\"(\" is never closed");
      ++pos_;
      return {};
    }
    if (c == '%') return parse_bytes(out);
    if (is_name_start(c)) {
      size_t at = pos_;
      std::string name = read_name();
      *out = ref(rule_id(name, at));
      return {};
    }
    return error(
        cat("unexpected ", describe_here(), "; expected a string, [class], rule name, \"(\" or \".\""));
  }

  Status parse_bytes(Expr* out) {
    size_t at = pos_;
    if (s_.substr(pos_, 2) != "%x") return error("expected %xHH (a raw byte)");
    pos_ += 2;
    auto hex2 = [&](int* v) {
      if (pos_ + 2 > s_.size() || hex_value(s_[pos_]) < 0 || hex_value(s_[pos_ + 1]) < 0) return false;
      *v = hex_value(s_[pos_]) * 16 + hex_value(s_[pos_ + 1]);
      pos_ += 2;
      return true;
    };
    int lo, hi;
    if (!hex2(&lo)) return error_at(at, "expected two hex digits after %x");
    hi = lo;
    if (pos_ < s_.size() && s_[pos_] == '-') {
      ++pos_;
      if (!hex2(&hi)) return error_at(at, "expected two hex digits after \"-\" in %xHH-HH");
      if (hi < lo) return error_at(at, "byte range %xHH-HH has its end below its start");
    }
    *out = bytes_in(uint8_t(lo), uint8_t(hi));
    return {};
  }

  Status parse_class(Expr* out) {
    size_t open = pos_++;
    bool negate = false;
    if (pos_ < s_.size() && s_[pos_] == '^') {
      negate = true;
      ++pos_;
    }
    std::vector<CodeRange> ranges;
    while (true) {
      if (pos_ >= s_.size()) return error_at(open, "character class \"[\" is never closed");
      if (s_[pos_] == ']') {
        ++pos_;
        break;
      }
      uint32_t lo, hi;
      TAILOR_RETURN_IF_ERROR(read_char(&lo));
      hi = lo;
      if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
        ++pos_;
        TAILOR_RETURN_IF_ERROR(read_char(&hi));
        if (hi < lo) return error(cat("character range end U+", std::hex, hi, " is below its start U+", lo));
      }
      ranges.push_back({lo, hi});
    }
    CharSet set = CharSet::from_ranges(std::move(ranges));
    if (negate) set = set.complement();
    *out = chars(std::move(set));
    return {};
  }

  static void remap_refs(Expr& e, const std::vector<uint32_t>& remap) {
    if (e.kind == ExprKind::rule_ref) e.rule = remap[e.rule];
    for (Expr& it : e.items) remap_refs(it, remap);
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::vector<uint32_t> def_order_;
  Grammar g_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
};

}  // namespace

Result<Grammar> parse_grammar_text(std::string_view text) {
  return Parser(text).run();
}

}  // namespace tailor::grammar
