// Grammar IR: named rules whose bodies are expression trees over Unicode code points and bytes.
// Every front end (the GBNF-like text format, regex, JSON Schema) produces this; the compiler
// (automaton.h) turns it into per-rule byte-level DFAs that the matcher runs over a token trie.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailor::grammar {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kUnbounded = UINT32_MAX;  // repeat max without an upper bound

// An inclusive range of code points. Surrogates (U+D800..U+DFFF) are never produced even if a range
// covers them: they have no UTF-8 encoding.
struct CodeRange {
  uint32_t lo = 0, hi = 0;
  bool operator==(const CodeRange&) const = default;
};

// A set of code points: sorted, non-overlapping, non-adjacent ranges (see normalize()).
class CharSet {
 public:
  CharSet() = default;
  static CharSet of(uint32_t cp) { return range(cp, cp); }
  static CharSet range(uint32_t lo, uint32_t hi);
  static CharSet any();  // every code point except surrogates
  static CharSet from_ranges(std::vector<CodeRange> ranges);

  void add(uint32_t lo, uint32_t hi);
  void add(const CharSet& o);
  CharSet complement() const;  // within [0, kMaxCodePoint], surrogates excluded
  CharSet intersect(const CharSet& o) const;
  CharSet minus(const CharSet& o) const { return intersect(o.complement()); }
  bool contains(uint32_t cp) const;
  bool empty() const { return ranges_.empty(); }
  uint64_t count() const;  // number of code points (surrogates excluded)
  const std::vector<CodeRange>& ranges() const { return ranges_; }
  bool operator==(const CharSet&) const = default;

 private:
  void normalize();
  std::vector<CodeRange> ranges_;
};

enum class ExprKind : uint8_t {
  empty,     // matches the empty string
  literal,   // `text` as raw bytes (usually UTF-8)
  char_set,  // one code point of `chars`, UTF-8 encoded
  byte_set,  // one byte in one of `bytes` ranges (for raw-byte grammars; rarely needed)
  seq,       // items in order
  alt,       // one of items
  repeat,    // items[0] repeated min..max times
  rule_ref,  // the rule `rule`
};

struct Expr {
  ExprKind kind = ExprKind::empty;
  std::string text;              // literal
  CharSet chars;                 // char_set
  std::vector<CodeRange> bytes;  // byte_set: ranges within 0..255
  std::vector<Expr> items;       // seq / alt operands; repeat: exactly one
  uint32_t min = 0, max = 0;     // repeat bounds; max may be kUnbounded
  uint32_t rule = 0;             // rule_ref: index into Grammar::rules
};

// Builders. They simplify trivially (a seq of one item is that item, nested seqs flatten).
Expr empty_expr();
Expr lit(std::string_view bytes);
Expr chars(CharSet set);
Expr bytes_in(uint8_t lo, uint8_t hi);
Expr seq(std::vector<Expr> items);
Expr alt(std::vector<Expr> items);
Expr rep(Expr e, uint32_t min, uint32_t max);
inline Expr opt(Expr e) {
  return rep(std::move(e), 0, 1);
}
inline Expr star(Expr e) {
  return rep(std::move(e), 0, kUnbounded);
}
inline Expr plus(Expr e) {
  return rep(std::move(e), 1, kUnbounded);
}
Expr ref(uint32_t rule);

// How the compiler treats references to a rule. `automatic` inlines non-recursive rules that are small or
// used once; `call` keeps the rule a separate automaton (shared token classification, e.g. JSON strings).
enum class InlineHint : uint8_t { automatic, always, call };

struct Rule {
  std::string name;
  Expr body;
  InlineHint hint = InlineHint::automatic;
};

struct Grammar {
  std::vector<Rule> rules;
  uint32_t root = 0;

  // Adds a rule (body = empty for now) and returns its index. The name is made unique with a suffix.
  uint32_t add_rule(std::string name, InlineHint hint = InlineHint::automatic);
  uint32_t find_rule(std::string_view name) const;  // UINT32_MAX when absent
  // Every rule_ref in range, root in range.
  Status validate() const;
  // The GBNF-like text form (parse_grammar_text reads it back). Deterministic: usable as a cache key.
  std::string to_text() const;
};

// Prints one expression in the text format (for error messages and tests).
std::string expr_to_text(const Expr& e, const Grammar& g);

}  // namespace tailor::grammar
