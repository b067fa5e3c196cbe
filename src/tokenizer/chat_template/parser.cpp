#include "tokenizer/chat_template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/lexer.h"

namespace tailor::chat_template {

namespace {

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
    return e;
  }

  // ---- statements ---------------------------------------------------------------------------------------
  std::vector<StmtPtr> subparse(Names end_tokens) {
    std::vector<StmtPtr> body;
    while (cur().type != Tok::eof) {
      const Token& tok = cur();
      if (tok.type == Tok::data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::data;
        s->pos = tok.pos;
        s->text = tok.text;
        body.push_back(std::move(s));
        next();
      } else if (tok.type == Tok::var_begin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::output;
        s->pos = cur().pos;
        s->expr = parse_tuple(false, true, {}, false);
        expect(Tok::var_end);
        body.push_back(std::move(s));
      } else if (tok.type == Tok::block_begin) {
        next();
        if (end_tokens.size() && is_any_name(cur(), end_tokens)) return body;
        body.push_back(parse_statement());
        expect(Tok::block_end);
      } else {
        fail_at(tok, "unexpected " + describe(tok));
      }
    }
    return body;
  }

  std::vector<StmtPtr> parse_statements(Names end_tokens, bool drop_needle) {
    skip_if(Tok::colon);
    expect(Tok::block_end);
    auto body = subparse(end_tokens);
    if (cur().type == Tok::eof) {
      std::string want;
      for (auto n : end_tokens) want += (want.empty() ? "'" : " or '") + std::string(n) + "'";
      std::string msg = "unexpected end of template: expected " + want;
      if (!tag_stack_.empty()) msg += " to close '" + tag_stack_.back() + "'";
      fail_at(cur(), msg);
    }
    if (drop_needle) next();
    return body;
  }

  StmtPtr new_stmt(StmtKind kind, size_t pos) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = pos;
    return s;
  }

  StmtPtr parse_statement() {
    const Token& tok = cur();
    DepthGuard guard(this, tok.pos);
    if (tok.type != Tok::name) fail_at(tok, "expected a tag name, got " + describe(tok));
    const std::string& n = tok.text;
    tag_stack_.push_back(n);
    StmtPtr s;
    if (n == "for") {
      s = parse_for();
    } else if (n == "if") {
      s = parse_if();
    } else if (n == "set") {
      s = parse_set();
    } else if (n == "macro") {
      s = parse_macro();
    } else if (n == "call") {
      s = parse_call_block();
    } else if (n == "filter") {
      s = parse_filter_block();
    } else if (n == "with") {
      s = parse_with();
    } else if (n == "print") {
      s = parse_print();
    } else if (n == "break" || n == "continue") {
      if (loops_.back() == 0) fail_at(tok, "{% " + n + " %} outside a for loop");
      s = new_stmt(n == "break" ? StmtKind::break_ : StmtKind::continue_, tok.pos);
      next();
    } else if (n == "generation") {
      // transformers' AssistantTracker extension: renders its body in place.
      s = new_stmt(StmtKind::scope, tok.pos);
      next();
      s->body = parse_statements({"endgeneration"}, true);
    } else if (n == "block" || n == "extends" || n == "include" || n == "import" || n == "from" ||
               n == "autoescape") {
      fail_at(tok,
              "{% " + n + " %} is not supported in chat templates (they are rendered from a single string)");
    } else {
      std::string msg = "unknown tag '" + n + "'";
      if (tag_stack_.size() > 1) msg += " inside '" + tag_stack_[tag_stack_.size() - 2] + "'";
      fail_at(tok, msg);
    }
    tag_stack_.pop_back();
    return s;
  }

  StmtPtr parse_for() {
    auto s = new_stmt(StmtKind::for_, next().pos);
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name(cur(), "recursive")) fail_at(cur(), "recursive for loops are not supported");
    ++loops_.back();
    s->body = parse_statements({"endfor", "else"}, false);
    --loops_.back();
    if (next().text != "endfor") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = new_stmt(StmtKind::if_, next().pos);
    s->expr = parse_tuple(false, false, {}, false);
    s->body = parse_statements({"elif", "else", "endif"}, false);
    while (true) {
      const Token& tok = next();
      if (tok.text == "elif") {
        ExprPtr test = parse_tuple(false, false, {}, false);
        auto body = parse_statements({"elif", "else", "endif"}, false);
        s->elifs.emplace_back(std::move(test), std::move(body));
        continue;
      }
      if (tok.text == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    auto s = new_stmt(StmtKind::set, next().pos);
    s->target = parse_assign_target(true, false, {}, true);
    if (skip_if(Tok::assign)) {
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    s->kind = StmtKind::set_block;
    if (cur().type == Tok::pipe) s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(Stmt* s) {
    expect(Tok::lparen);
    while (cur().type != Tok::rparen) {
      if (!s->params.empty()) expect(Tok::comma);
      const Token& name = expect(Tok::name);
      s->params.push_back(name.text);
      if (skip_if(Tok::assign)) {
        s->defaults.push_back(parse_expression(true));
      } else if (!s->defaults.empty()) {
        fail_at(name, "non-default argument '" + name.text + "' follows default argument");
      }
    }
    expect(Tok::rparen);
  }

  // Parses a macro-like body (macro or caller) with its own varargs/kwargs/caller tracking.
  void parse_macro_body(Stmt* s, std::string_view end) {
    macros_.push_back(s);
    loops_.push_back(0);
    s->body = parse_statements({end}, true);
    loops_.pop_back();
    macros_.pop_back();
  }

  StmtPtr parse_macro() {
    auto s = new_stmt(StmtKind::macro, next().pos);
    s->text = expect(Tok::name).text;
    parse_signature(s.get());
    parse_macro_body(s.get(), "endmacro");
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = new_stmt(StmtKind::call_block, next().pos);
    if (cur().type == Tok::lparen) parse_signature(s.get());
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::call)
      fail_at(s->pos, "{% call %} needs a macro call, e.g. {% call m() %}");
    s->text = "caller";
    parse_macro_body(s.get(), "endcall");
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = new_stmt(StmtKind::filter_block, next().pos);
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = new_stmt(StmtKind::with, next().pos);
    while (cur().type != Tok::block_end) {
      if (!s->params.empty()) expect(Tok::comma);
      s->params.push_back(expect(Tok::name).text);
      expect(Tok::assign);
      s->defaults.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_print() {
    // {% print a, b %} outputs each expression; modelled as a scope of output statements.
    auto s = new_stmt(StmtKind::scope, next().pos);
    while (cur().type != Tok::block_end) {
      if (!s->body.empty()) expect(Tok::comma);
      auto out = new_stmt(StmtKind::output, cur().pos);
      out->expr = parse_expression(true);
      s->body.push_back(std::move(out));
    }
    return s;
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, Names extra_end, bool with_namespace) {
    if (with_namespace && cur().type == Tok::name && look().type == Tok::dot) {
      auto e = node(ExprKind::nsref, cur().pos);
      e->name = next().text;
      next();  // dot
      e->attr = expect(Tok::name).text;
      return finish(std::move(e));
    }
    if (name_only) {
      auto e = node(ExprKind::name, cur().pos);
      e->name = expect(Tok::name).text;
      return finish(std::move(e));
    }
    ExprPtr target = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& e) {
    if (e.kind == ExprKind::name) {
      if (e.name == "loop" && false) return;
      return;
    }
    if (e.kind == ExprKind::tuple) {
      for (auto& c : e.a) check_assignable(*c);
      return;
    }
    fail_at(e.pos, "can't assign to this expression (expected a name or a tuple of names)");
  }

  // ---- expressions --------------------------------------------------------------------------------------
  bool is_tuple_end(Names extra) const {
    Tok ty = cur().type;
    if (ty == Tok::var_end || ty == Tok::block_end || ty == Tok::rparen) return true;
    return extra.size() && is_any_name(cur(), extra);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, Names extra_end, bool explicit_parens) {
    size_t pos = cur().pos;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect(Tok::comma);
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (cur().type == Tok::comma)
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail_at(cur(), "expected an expression, got " + describe(cur()));
    }
    auto e = node(ExprKind::tuple, pos);
    e->a = std::move(args);
    return finish(std::move(e));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(this, cur().pos);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr1 = parse_or();
    while (is_name(cur(), "if")) {
      size_t pos = next().pos;
      ExprPtr test = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) {
        DepthGuard guard(this, cur().pos);
        expr3 = parse_condexpr();
      }
      auto e = node(ExprKind::cond, pos);
      e->pos = expr1->pos;
      e->a.push_back(std::move(test));
      e->a.push_back(std::move(expr1));
      e->a.push_back(std::move(expr3));
      expr1 = finish(std::move(e));
    }
    return expr1;
  }

  ExprPtr binary(Op op, ExprPtr l, ExprPtr r, size_t pos) {
    auto e = node(ExprKind::binary, pos);
    e->op = op;
    e->a.push_back(std::move(l));
    e->a.push_back(std::move(r));
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name(cur(), "or")) {
      size_t pos = next().pos;
      left = binary(Op::or_, std::move(left), parse_and(), pos);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name(cur(), "and")) {
      size_t pos = next().pos;
      left = binary(Op::and_, std::move(left), parse_not(), pos);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name(cur(), "not")) {
      size_t pos = next().pos;
      DepthGuard guard(this, pos);
      auto e = node(ExprKind::unary, pos);
      e->op = Op::not_;
      e->a.push_back(parse_not());
      return finish(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t pos = cur().pos;
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      Tok ty = cur().type;
      Cmp c;
      if (ty == Tok::eq)
        c = Cmp::eq;
      else if (ty == Tok::ne)
        c = Cmp::ne;
      else if (ty == Tok::lt)
        c = Cmp::lt;
      else if (ty == Tok::lteq)
        c = Cmp::le;
      else if (ty == Tok::gt)
        c = Cmp::gt;
      else if (ty == Tok::gteq)
        c = Cmp::ge;
      else if (is_name(cur(), "in"))
        c = Cmp::in;
      else if (is_name(cur(), "not") && is_name(look(), "in")) {
        next();
        c = Cmp::not_in;
      } else {
        break;
      }
      size_t op_pos = next().pos;
      if (!cmp) {
        cmp = node(ExprKind::compare, pos);
        cmp->a.push_back(std::move(expr));
      }
      cmp->pos = op_pos;
      cmp->cmp.push_back(c);
      cmp->a.push_back(parse_math1());
    }
    if (!cmp) return expr;
    return finish(std::move(cmp));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (cur().type == Tok::add || cur().type == Tok::sub) {
      Op op = cur().type == Tok::add ? Op::add : Op::sub;
      size_t pos = next().pos;
      left = binary(op, std::move(left), parse_concat(), pos);
    }
    return left;
  }

  ExprPtr parse_concat() {
    size_t pos = cur().pos;
    ExprPtr first = parse_math2();
    if (cur().type != Tok::tilde) return first;
    auto e = node(ExprKind::concat, pos);
    e->a.push_back(std::move(first));
    while (skip_if(Tok::tilde)) e->a.push_back(parse_math2());
    return finish(std::move(e));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (true) {
      Tok ty = cur().type;
      Op op;
      if (ty == Tok::mul)
        op = Op::mul;
      else if (ty == Tok::div)
        op = Op::div;
      else if (ty == Tok::floordiv)
        op = Op::floordiv;
      else if (ty == Tok::mod)
        op = Op::mod;
      else
        break;
      size_t pos = next().pos;
      left = binary(op, std::move(left), parse_pow(), pos);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (cur().type == Tok::pow) {
      size_t pos = next().pos;
      left = binary(Op::pow, std::move(left), parse_unary(true), pos);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    Tok ty = cur().type;
    if (ty == Tok::sub || ty == Tok::add) {
      size_t pos = next().pos;
      DepthGuard guard(this, pos);
      e = node(ExprKind::unary, pos);
      e->op = ty == Tok::sub ? Op::neg : Op::pos;
      e->a.push_back(parse_unary(false));
      e = finish(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, size_t pos) {
    auto e = node(ExprKind::literal, pos);
    e->value = std::move(v);
    return finish(std::move(e));
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    DepthGuard guard(this, tok.pos);
    switch (tok.type) {
      case Tok::name: {
        next();
        if (tok.text == "true" || tok.text == "True") return literal(Value::boolean(true), tok.pos);
        if (tok.text == "false" || tok.text == "False") return literal(Value::boolean(false), tok.pos);
        if (tok.text == "none" || tok.text == "None") return literal(Value::none(), tok.pos);
        auto e = node(ExprKind::name, tok.pos);
        e->name = tok.text;
        note_special_name(tok.text);
        return finish(std::move(e));
      }
      case Tok::string: {
        std::string s = next().text;
        while (cur().type == Tok::string) s += next().text;
        return literal(Value::string(std::move(s)), tok.pos);
      }
      case Tok::integer:
        next();
        return literal(Value::integer(tok.ival), tok.pos);
      case Tok::floating:
        next();
        return literal(Value::floating(tok.fval), tok.pos);
      case Tok::lparen: {
        next();
        ExprPtr e = parse_tuple(false, true, {}, true);
        expect(Tok::rparen);
        return e;
      }
      case Tok::lbracket: {
        auto e = node(ExprKind::list, next().pos);
        while (cur().type != Tok::rbracket) {
          if (!e->a.empty()) expect(Tok::comma);
          if (cur().type == Tok::rbracket) break;
          e->a.push_back(parse_expression(true));
        }
        expect(Tok::rbracket);
        return finish(std::move(e));
      }
      case Tok::lbrace: {
        auto e = node(ExprKind::dict, next().pos);
        while (cur().type != Tok::rbrace) {
          if (!e->a.empty()) expect(Tok::comma);
          if (cur().type == Tok::rbrace) break;
          e->a.push_back(parse_expression(true));
          expect(Tok::colon);
          e->a.push_back(parse_expression(true));
        }
        expect(Tok::rbrace);
        return finish(std::move(e));
      }
      default:
        fail_at(tok, "unexpected " + describe(tok));
    }
  }

  void note_special_name(const std::string& n) {
    if (macros_.empty()) return;
    if (n == "varargs") macros_.back()->uses_varargs = true;
    if (n == "kwargs") macros_.back()->uses_kwargs = true;
    if (n == "caller") macros_.back()->uses_caller = true;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      Tok ty = cur().type;
      if (ty == Tok::dot || ty == Tok::lbracket)
        e = parse_subscript(std::move(e));
      else if (ty == Tok::lparen)
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      Tok ty = cur().type;
      if (ty == Tok::pipe)
        e = parse_filter(std::move(e), false);
      else if (is_name(cur(), "is"))
        e = parse_test(std::move(e));
      else if (ty == Tok::lparen)
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const Token& tok = next();
    if (tok.type == Tok::dot) {
      const Token& attr = next();
      if (attr.type == Tok::name) {
        auto e = node(ExprKind::getattr, tok.pos);
        e->name = attr.text;
        e->a.push_back(std::move(obj));
        return finish(std::move(e));
      }
      if (attr.type != Tok::integer) fail_at(attr, "expected an attribute name or number after '.'");
      auto e = node(ExprKind::getitem, tok.pos);
      e->a.push_back(std::move(obj));
      e->a.push_back(literal(Value::integer(attr.ival), attr.pos));
      return finish(std::move(e));
    }
    // tok is '['
    std::vector<ExprPtr> args;
    while (cur().type != Tok::rbracket) {
      if (!args.empty()) expect(Tok::comma);
      args.push_back(parse_subscribed());
    }
    expect(Tok::rbracket);
    auto e = node(ExprKind::getitem, tok.pos);
    e->a.push_back(std::move(obj));
    if (args.size() == 1) {
      e->a.push_back(std::move(args[0]));
    } else {
      auto tup = node(ExprKind::tuple, tok.pos);
      tup->a = std::move(args);
      e->a.push_back(finish(std::move(tup)));
    }
    return finish(std::move(e));
  }

  ExprPtr parse_subscribed() {
    size_t pos = cur().pos;
    std::vector<ExprPtr> parts;
    if (cur().type == Tok::colon) {
      next();
      parts.push_back(nullptr);
    } else {
      ExprPtr e = parse_expression(true);
      if (cur().type != Tok::colon) return e;
      next();
      parts.push_back(std::move(e));
    }
    if (cur().type == Tok::colon || cur().type == Tok::rbracket || cur().type == Tok::comma)
      parts.push_back(nullptr);
    else
      parts.push_back(parse_expression(true));
    if (cur().type == Tok::colon) {
      next();
      if (cur().type != Tok::rbracket && cur().type != Tok::comma)
        parts.push_back(parse_expression(true));
      else
        parts.push_back(nullptr);
    } else {
      parts.push_back(nullptr);
    }
    auto e = node(ExprKind::slice, pos);
    e->a = std::move(parts);
    return finish(std::move(e));
  }

  void parse_call_args(Expr* e) {
    const Token& open = expect(Tok::lparen);
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail_at(open, "invalid syntax for function call expression");
    };
    while (cur().type != Tok::rparen) {
      if (require_comma) {
        expect(Tok::comma);
        if (cur().type == Tok::rparen) break;
      }
      if (cur().type == Tok::mul) {
        ensure(!e->dyn_args && !e->dyn_kwargs);
        next();
        e->dyn_args = parse_expression(true);
      } else if (cur().type == Tok::pow) {
        ensure(!e->dyn_kwargs);
        next();
        e->dyn_kwargs = parse_expression(true);
      } else if (cur().type == Tok::name && look().type == Tok::assign) {
        ensure(!e->dyn_kwargs);
        std::string key = next().text;
        next();
        e->kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!e->dyn_args && !e->dyn_kwargs && e->kwargs.empty());
        e->args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect(Tok::rparen);
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = node(ExprKind::call, cur().pos);
    e->a.push_back(std::move(callee));
    parse_call_args(e.get());
    return finish(std::move(e));
  }

  std::string dotted_name() {
    std::string name = expect(Tok::name).text;
    while (cur().type == Tok::dot) {
      next();
      name += "." + expect(Tok::name).text;
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr operand, bool start_inline) {
    while (cur().type == Tok::pipe || start_inline) {
      if (!start_inline) next();
      size_t pos = cur().pos;
      auto e = node(ExprKind::filter, pos);
      e->name = dotted_name();
      e->builtin = find_filter(e->name);
      e->a.push_back(std::move(operand));
      if (cur().type == Tok::lparen) parse_call_args(e.get());
      operand = finish(std::move(e));
      start_inline = false;
    }
    return operand;
  }

  ExprPtr parse_test(ExprPtr operand) {
    size_t pos = next().pos;  // 'is'
    bool negated = skip_name("not");
    auto e = node(ExprKind::test, pos);
    e->name = dotted_name();
    e->builtin = find_test(e->name);
    e->a.push_back(std::move(operand));
    Tok ty = cur().type;
    if (ty == Tok::lparen) {
      parse_call_args(e.get());
    } else if ((ty == Tok::name || ty == Tok::string || ty == Tok::integer || ty == Tok::floating ||
                ty == Tok::lbracket || ty == Tok::lbrace) &&
               !is_any_name(cur(), {"else", "or", "and"})) {
      if (is_name(cur(), "is")) fail_at(cur(), "tests cannot be chained with 'is'");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    ExprPtr test = finish(std::move(e));
    if (!negated) return test;
    auto n = node(ExprKind::unary, pos);
    n->op = Op::not_;
    n->a.push_back(std::move(test));
    return finish(std::move(n));
  }
};

// jinja2 reports unknown filters and tests when compiling, except inside `if` statements and conditional
// expressions, where they fail only when reached.
void check_names(const Expr* e, bool soft);
void check_names(const std::vector<StmtPtr>& body, bool soft);

void check_names(const Expr* e, bool soft) {
  if (!e) return;
  if (e->kind == ExprKind::cond) soft = true;
  if ((e->kind == ExprKind::filter || e->kind == ExprKind::test) && e->builtin < 0 && !soft) {
    bool supported_elsewhere =
        e->kind == ExprKind::filter ? jinja_has_filter(e->name) : jinja_has_test(e->name);
    throw TemplateError{std::string(supported_elsewhere ? "unsupported " : "no ") +
                            (e->kind == ExprKind::filter ? "filter" : "test") + " named '" + e->name + "'" +
                            (supported_elsewhere ? " (jinja2 has it, tailor does not)" : ""),
                        e->pos};
  }
  for (auto& c : e->a) check_names(c.get(), soft);
  for (auto& c : e->args) check_names(c.get(), soft);
  for (auto& kv : e->kwargs) check_names(kv.second.get(), soft);
  check_names(e->dyn_args.get(), soft);
  check_names(e->dyn_kwargs.get(), soft);
}

void check_names(const std::vector<StmtPtr>& body, bool soft) {
  for (auto& s : body) {
    switch (s->kind) {
      case StmtKind::if_:
        check_names(s->expr.get(), true);
        check_names(s->body, true);
        for (auto& [test, b] : s->elifs) {
          check_names(test.get(), true);
          check_names(b, true);
        }
        check_names(s->else_body, true);
        break;
      case StmtKind::for_:
        check_names(s->expr.get(), soft);
        check_names(s->cond.get(), false);
        check_names(s->body, false);
        check_names(s->else_body, false);
        break;
      case StmtKind::output:
      case StmtKind::set:
        check_names(s->expr.get(), soft);
        break;
      case StmtKind::scope:
        check_names(s->body, soft);
        break;
      default:
        check_names(s->expr.get(), soft);
        for (auto& d : s->defaults) check_names(d.get(), soft);
        check_names(s->body, false);
        break;
    }
  }
}

}  // namespace

std::unique_ptr<Program> parse_program(std::string_view source) {
  auto prog = std::make_unique<Program>();
  prog->source = normalize_source(source);
  std::vector<Token> toks = tokenize(prog->source);
  Parser p(toks);
  prog->body = p.parse_all();
  check_names(prog->body, false);
  return prog;
}

}  // namespace tailor::chat_template
