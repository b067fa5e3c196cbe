// Internal: the recursive-descent parser class, split between parser.cpp (statements) and
// parse_expr.cpp (expressions). Only parser.h is the module's interface.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template/ast.h"
#include "tokenizer/chat_template/lexer.h"

namespace tailor::chat_template::detail {

using Names = std::initializer_list<std::string_view>;

class Parser {
 public:
  Parser(const std::vector<Token>& toks) : t_(toks) {}

  std::vector<StmtPtr> parse_all() {
    auto body = subparse({});
    if (cur().type != Tok::eof) fail_at(cur(), "unexpected " + describe(cur()));
    return body;
  }

 private:
  const std::vector<Token>& t_;
  size_t i_ = 0;
  int depth_ = 0;                       // recursion guard for nested statements and expressions
  std::vector<Stmt*> macros_;           // macros / call blocks being parsed (for varargs, kwargs, caller)
  std::vector<int> loops_{0};           // for-loop nesting per macro level (for break / continue)
  std::vector<std::string> tag_stack_;  // open block tags, for "expected endfor" messages

  // ---- token stream -------------------------------------------------------------------------------------
  const Token& cur() const { return t_[i_]; }
  const Token& look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
  const Token& next() {
    const Token& tok = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return tok;
  }
  bool is_name(const Token& tok, std::string_view n) const { return tok.type == Tok::name && tok.text == n; }
  bool is_any_name(const Token& tok, Names names) const {
    if (tok.type != Tok::name) return false;
    for (auto n : names)
      if (tok.text == n) return true;
    return false;
  }
  bool skip_if(Tok type) {
    if (cur().type != type) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(cur(), n)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail_at(const Token& tok, std::string msg) {
    throw TemplateError{std::move(msg), tok.pos};
  }
  [[noreturn]] void fail_at(size_t pos, std::string msg) { throw TemplateError{std::move(msg), pos}; }
  static std::string describe_tok(Tok type) {
    Token tmp{type, 0};
    return describe(tmp);
  }
  const Token& expect(Tok type) {
    if (cur().type != type) fail_at(cur(), "expected " + describe_tok(type) + ", got " + describe(cur()));
    return next();
  }
  const Token& expect_name(std::string_view n) {
    if (!is_name(cur(), n)) fail_at(cur(), "expected '" + std::string(n) + "', got " + describe(cur()));
    return next();
  }

  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser, size_t pos) : p(parser) {
      if (++p->depth_ > kMaxTreeDepth) p->fail_at(pos, "template nests too deeply");
    }
    ~DepthGuard() { --p->depth_; }
  };

  ExprPtr node(ExprKind kind, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  // Whether jinja2's optimizer could fold the expression to a constant (see Expr::is_const).
  static bool foldable(const Expr& e) {
    auto all = [](const std::vector<ExprPtr>& v) {
      for (auto& c : v)
        if (c && !c->is_const) return false;
      return true;
    };
    switch (e.kind) {
      case ExprKind::literal:
        return true;
      // as_const of `a and b`, `a or b` and `x if t else y` evaluates only the operands it needs: whether
      // they fold is decided when folding is attempted.
      case ExprKind::binary:
        if (e.op == Op::and_ || e.op == Op::or_) return e.a[0]->is_const;
        return all(e.a);
      case ExprKind::tuple:
      case ExprKind::list:
      case ExprKind::dict:
      case ExprKind::unary:
      case ExprKind::concat:
      case ExprKind::compare:
      case ExprKind::getattr:
      case ExprKind::getitem:
      case ExprKind::slice:
        return all(e.a);
      case ExprKind::cond:
        return e.a[0]->is_const;
      case ExprKind::filter:
      case ExprKind::test: {
        if (!e.a[0] || e.dyn_args || e.dyn_kwargs || !all(e.a) || !all(e.args)) return false;
        for (auto& kv : e.kwargs)
          if (!kv.second->is_const) return false;
        // Filters that need the render context are never folded.
        static const char* const contextual[] = {"map", "select", "reject", "selectattr", "rejectattr"};
        for (auto* n : contextual)
          if (e.name == n) return false;
        return true;
      }
      default:
        return false;
    }
  }

  // Records the subtree depth; refuses trees too deep to evaluate or destroy safely.
  ExprPtr finish(ExprPtr e) {
    int d = 0;
    auto see = [&](const ExprPtr& c) {
      if (c) d = std::max(d, c->depth);
    };
    for (auto& c : e->a) see(c);
    for (auto& c : e->args) see(c);
    for (auto& kv : e->kwargs) see(kv.second);
    see(e->dyn_args);
    see(e->dyn_kwargs);
    e->depth = d + 1;
    if (e->depth > kMaxTreeDepth) fail_at(e->pos, "expression nests too deeply");
    e->is_const = foldable(*e);
    return e;
  }

  // ---- statements (parser.cpp) ----
  std::vector<StmtPtr> subparse(Names end_tokens);
  std::vector<StmtPtr> parse_statements(Names end_tokens, bool drop_needle);
  StmtPtr new_stmt(StmtKind kind, size_t pos);
  StmtPtr parse_statement();
  StmtPtr parse_for();
  StmtPtr parse_if();
  StmtPtr parse_set();
  void parse_signature(Stmt* s);
  // Parses a macro-like body (macro or caller) with its own varargs/kwargs/caller tracking.
  void parse_macro_body(Stmt* s, std::string_view end);
  StmtPtr parse_macro();
  StmtPtr parse_call_block();
  StmtPtr parse_filter_block();
  StmtPtr parse_with();
  StmtPtr parse_print();
  ExprPtr parse_assign_target(bool with_tuple, bool name_only, Names extra_end, bool with_namespace);
  void check_assignable(const Expr& e);

  // ---- expressions (parse_expr.cpp) ----
  bool is_tuple_end(Names extra) const;
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, Names extra_end, bool explicit_parens);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(Op op, ExprPtr l, ExprPtr r, size_t pos);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr literal(Value v, size_t pos);
  ExprPtr parse_primary();
  void note_special_name(const std::string& n);
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj);
  ExprPtr parse_subscribed();
  void parse_call_args(Expr* e);
  ExprPtr parse_call(ExprPtr callee);
  std::string dotted_name();
  ExprPtr parse_filter(ExprPtr operand, bool start_inline);
  ExprPtr parse_test(ExprPtr operand);
};

}  // namespace tailor::chat_template::detail
