// Expression parsing (jinja2/parser.py: parse_expression down to parse_primary, filters, tests, calls).
#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/parser_impl.h"

namespace tailor::chat_template::detail {

bool Parser::is_tuple_end(Names extra) const {
  Tok ty = cur().type;
  if (ty == Tok::var_end || ty == Tok::block_end || ty == Tok::rparen) return true;
  return extra.size() && is_any_name(cur(), extra);
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, Names extra_end, bool explicit_parens) {
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

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(this, cur().pos);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
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

ExprPtr Parser::binary(Op op, ExprPtr l, ExprPtr r, size_t pos) {
  auto e = node(ExprKind::binary, pos);
  e->op = op;
  e->a.push_back(std::move(l));
  e->a.push_back(std::move(r));
  return finish(std::move(e));
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name(cur(), "or")) {
    size_t pos = next().pos;
    left = binary(Op::or_, std::move(left), parse_and(), pos);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name(cur(), "and")) {
    size_t pos = next().pos;
    left = binary(Op::and_, std::move(left), parse_not(), pos);
  }
  return left;
}

ExprPtr Parser::parse_not() {
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

ExprPtr Parser::parse_compare() {
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

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (cur().type == Tok::add || cur().type == Tok::sub) {
    Op op = cur().type == Tok::add ? Op::add : Op::sub;
    size_t pos = next().pos;
    left = binary(op, std::move(left), parse_concat(), pos);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  size_t pos = cur().pos;
  ExprPtr first = parse_math2();
  if (cur().type != Tok::tilde) return first;
  auto e = node(ExprKind::concat, pos);
  e->a.push_back(std::move(first));
  while (skip_if(Tok::tilde)) e->a.push_back(parse_math2());
  return finish(std::move(e));
}

ExprPtr Parser::parse_math2() {
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

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (cur().type == Tok::pow) {
    size_t pos = next().pos;
    left = binary(Op::pow, std::move(left), parse_unary(true), pos);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
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

ExprPtr Parser::literal(Value v, size_t pos) {
  auto e = node(ExprKind::literal, pos);
  e->value = std::move(v);
  return finish(std::move(e));
}

ExprPtr Parser::parse_primary() {
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

void Parser::note_special_name(const std::string& n) {
  if (macros_.empty()) return;
  if (n == "varargs") macros_.back()->uses_varargs = true;
  if (n == "kwargs") macros_.back()->uses_kwargs = true;
  if (n == "caller") macros_.back()->uses_caller = true;
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
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

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
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

ExprPtr Parser::parse_subscript(ExprPtr obj) {
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

ExprPtr Parser::parse_subscribed() {
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

void Parser::parse_call_args(Expr* e) {
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

ExprPtr Parser::parse_call(ExprPtr callee) {
  auto e = node(ExprKind::call, cur().pos);
  e->a.push_back(std::move(callee));
  parse_call_args(e.get());
  return finish(std::move(e));
}

std::string Parser::dotted_name() {
  std::string name = expect(Tok::name).text;
  while (cur().type == Tok::dot) {
    next();
    name += "." + expect(Tok::name).text;
  }
  return name;
}

ExprPtr Parser::parse_filter(ExprPtr operand, bool start_inline) {
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

ExprPtr Parser::parse_test(ExprPtr operand) {
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

}  // namespace tailor::chat_template::detail
