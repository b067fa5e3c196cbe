// Compile-time constant folding as jinja2's optimizer does it (jinja2/optimizer.py, nodes.py as_const,
// compiler.py visit_Output), so that folded and unfolded expressions differ exactly where they differ in
// jinja2.
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/parser.h"

namespace tailor::chat_template {

namespace {

// jinja2's has_safe_repr: the values a folded constant may hold.
bool safe_repr(const Value& v, int depth = 0) {
  if (depth > kMaxValueDepth) return false;
  switch (v.kind()) {
    case Kind::none:
    case Kind::boolean:
    case Kind::integer:
    case Kind::floating:
    case Kind::string:
      return true;
    case Kind::list:
      if (!v.is_indexable()) return false;
      for (auto& x : v.items())
        if (!safe_repr(x, depth + 1)) return false;
      return true;
    case Kind::dict:
      for (auto& [k, x] : v.dict().items())
        if (!safe_repr(x, depth + 1)) return false;
      return true;
    default:
      return false;
  }
}

class Folder {
 public:
  explicit Folder(const Program& prog) : prog_(prog) {}

  // Bottom-up, like the optimizer's generic_visit: children first, then the node itself.
  void expr(ExprPtr& e) {
    if (!e) return;
    for (auto& c : e->a) expr(c);
    for (auto& c : e->args) expr(c);
    for (auto& kv : e->kwargs) expr(kv.second);
    expr(e->dyn_args);
    expr(e->dyn_kwargs);
    if (!e->is_const || e->kind == ExprKind::literal || e->kind == ExprKind::slice) return;
    Value v;
    if (!try_eval(*e, &v) || !safe_repr(v)) return;
    auto lit = std::make_unique<Expr>();
    lit->kind = ExprKind::literal;
    lit->pos = e->pos;
    lit->value = std::move(v);
    lit->is_const = true;
    e = std::move(lit);
  }

  void body(std::vector<StmtPtr>& stmts) {
    for (auto& s : stmts) {
      expr(s->expr);
      expr(s->cond);
      for (auto& d : s->defaults) expr(d);
      for (auto& [test, b] : s->elifs) {
        expr(test);
        body(b);
      }
      body(s->body);
      body(s->else_body);
      // A constant {{ }} becomes text; here any value will do, undefined included (it prints as "").
      if (s->kind == StmtKind::output && s->expr->is_const) {
        Value v;
        if (try_eval(*s->expr, &v)) {
          try {
            s->text = py_str(v);
            s->kind = StmtKind::data;
            s->expr.reset();
          } catch (const TemplateError&) {
          }
        }
      }
    }
  }

 private:
  const Program& prog_;

  bool try_eval(const Expr& e, Value* out) {
    Limits limits;
    limits.max_output_bytes = size_t{1} << 20;
    limits.max_steps = 100'000;
    limits.max_depth = 600;
    Interpreter in(prog_, limits, std::nullopt);
    try {
      *out = in.fold(e);
      return true;
    } catch (const TemplateError&) {
      return false;  // jinja2: Impossible, evaluated at render time instead
    }
  }
};

}  // namespace

void fold_constants(Program& prog) {
  Folder f(prog);
  f.body(prog.body);
}

}  // namespace tailor::chat_template
