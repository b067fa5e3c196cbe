#include "tokenizer/chat_template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/lexer.h"
#include "tokenizer/chat_template/parser_impl.h"

namespace tailor::chat_template {

namespace detail {

std::vector<StmtPtr> Parser::subparse(Names end_tokens) {
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

std::vector<StmtPtr> Parser::parse_statements(Names end_tokens, bool drop_needle) {
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

StmtPtr Parser::new_stmt(StmtKind kind, size_t pos) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->pos = pos;
  return s;
}

StmtPtr Parser::parse_statement() {
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

StmtPtr Parser::parse_for() {
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

StmtPtr Parser::parse_if() {
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

StmtPtr Parser::parse_set() {
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

void Parser::parse_signature(Stmt* s) {
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
void Parser::parse_macro_body(Stmt* s, std::string_view end) {
  macros_.push_back(s);
  loops_.push_back(0);
  s->body = parse_statements({end}, true);
  loops_.pop_back();
  macros_.pop_back();
}

StmtPtr Parser::parse_macro() {
  auto s = new_stmt(StmtKind::macro, next().pos);
  s->text = expect(Tok::name).text;
  parse_signature(s.get());
  parse_macro_body(s.get(), "endmacro");
  return s;
}

StmtPtr Parser::parse_call_block() {
  auto s = new_stmt(StmtKind::call_block, next().pos);
  if (cur().type == Tok::lparen) parse_signature(s.get());
  s->expr = parse_expression(true);
  if (s->expr->kind != ExprKind::call) fail_at(s->pos, "{% call %} needs a macro call, e.g. {% call m() %}");
  s->text = "caller";
  parse_macro_body(s.get(), "endcall");
  return s;
}

StmtPtr Parser::parse_filter_block() {
  auto s = new_stmt(StmtKind::filter_block, next().pos);
  s->expr = parse_filter(nullptr, true);
  s->body = parse_statements({"endfilter"}, true);
  return s;
}

StmtPtr Parser::parse_with() {
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

StmtPtr Parser::parse_print() {
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

ExprPtr Parser::parse_assign_target(bool with_tuple, bool name_only, Names extra_end, bool with_namespace) {
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

void Parser::check_assignable(const Expr& e) {
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

}  // namespace detail

namespace {

using detail::Parser;

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
  fold_constants(*prog);
  return prog;
}

}  // namespace tailor::chat_template
