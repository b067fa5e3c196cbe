#include "tokenizer/chat_template/interpreter.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/chat_template/builtins.h"

namespace tailor::chat_template {

const Value* Scope::find_local(std::string_view name) const {
  for (auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

std::string callable_repr(const Callable& c) {
  switch (c.type) {
    case Callable::Type::macro:
      return "<Macro '" + c.name + "'>";
    case Callable::Type::builtin:
      return "<function " + c.name + ">";
    case Callable::Type::bound_method:
      return "<built-in method " + c.name + " of " + c.self.type_name() + " object>";
  }
  return "<callable>";
}

static std::shared_ptr<const Callable> make_macro(const Stmt& s, Scope* closure) {
  auto c = std::make_shared<Callable>();
  c->type = Callable::Type::macro;
  c->name = s.kind == StmtKind::macro ? s.text : "caller";
  c->def = &s;
  c->closure = closure;
  return c;
}

Interpreter::Interpreter(const Program& prog, const Limits& limits, std::optional<std::time_t> now)
    : prog_(prog), limits_(limits), now_(now) {}

Interpreter::DepthGuard::DepthGuard(Interpreter* i) : in(i) {
  if (++in->depth_ > in->limits_.max_depth)
    fail("template recursion is too deep (more than " + std::to_string(in->limits_.max_depth) +
         " nested frames)");
}

std::time_t Interpreter::now() const {
  return now_ ? *now_ : std::time(nullptr);
}

void Interpreter::charge(uint64_t units) {
  steps_ += units;
  if (steps_ > limits_.max_steps)
    fail("rendering takes too long: more than " + std::to_string(limits_.max_steps) +
         " steps (is the template looping without end?)");
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes)
    fail("a string of " + std::to_string(bytes) + " bytes exceeds the limit of " +
         std::to_string(limits_.max_output_bytes) + " bytes");
}

Scope* Interpreter::new_scope(Scope* parent) {
  Scope* s = &heap_.scopes.emplace_back();
  s->parent = parent;
  return s;
}

Value Interpreter::bound_method(const Value& self, std::string_view name) {
  auto c = std::make_shared<Callable>();
  c->type = Callable::Type::bound_method;
  c->name = std::string(name);
  c->self = self;
  return Value::callable(std::move(c));
}

Value Interpreter::lookup(const std::string& name, Scope* scope) {
  for (Scope* s = scope; s; s = s->parent)
    if (const Value* v = s->find_local(name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::emit(std::string_view s) {
  if (out_->size() + s.size() > limits_.max_output_bytes)
    fail("the rendered text exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  charge(s.size() / 64);
  out_->append(s);
}

std::string Interpreter::render(const Value& context) {
  globals_ = new_scope(nullptr);
  add_globals(globals_);
  if (context.is_dict())
    for (auto& [k, v] : context.dict().items()) globals_->set(k, v);
  Scope* top = new_scope(globals_);
  std::string out;
  out_ = &out;
  exec_body(prog_.body, top);
  out_ = nullptr;
  return out;
}

Value Interpreter::fold(const Expr& e) {
  if (!globals_) globals_ = new_scope(nullptr);
  folding_ = true;
  return eval(e, globals_);
}

// ---- statements -------------------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const std::vector<StmtPtr>& body, Scope* scope) {
  for (auto& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

std::string Interpreter::capture(const std::vector<StmtPtr>& body, Scope* scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  struct Restore {
    std::string** slot;
    std::string* value;
    ~Restore() { *slot = value; }
  } restore{&out_, saved};
  exec_body(body, scope);
  return buf;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, Scope* scope) {
  DepthGuard guard(this);
  charge(1);
  pos_ = s.pos;
  switch (s.kind) {
    case StmtKind::data:
      emit(s.text);
      return Flow::normal;
    case StmtKind::output: {
      Value v = eval(*s.expr, scope);
      if (v.is_string()) {
        emit(v.str());
      } else {
        pos_ = s.pos;
        std::string text = py_str(v);
        emit(text);
      }
      return Flow::normal;
    }
    case StmtKind::if_: {
      if (eval(*s.expr, scope).truthy()) return exec_body(s.body, scope);
      for (auto& [test, body] : s.elifs)
        if (eval(*test, scope).truthy()) return exec_body(body, scope);
      return exec_body(s.else_body, scope);
    }
    case StmtKind::for_: {
      Flow flow = Flow::normal;
      exec_for(s, scope, &flow);
      return flow;
    }
    case StmtKind::set: {
      Value v = eval(*s.expr, scope);
      pos_ = s.pos;
      assign(*s.target, v, scope);
      return Flow::normal;
    }
    case StmtKind::set_block: {
      Value text = Value::string(capture(s.body, new_scope(scope)));  // the block body is its own scope
      Value v = s.expr ? eval_filter(*s.expr, scope, &text) : text;
      pos_ = s.pos;
      assign(*s.target, v, scope);
      return Flow::normal;
    }
    case StmtKind::macro: {
      scope->captured = true;
      scope->set(s.text, Value::callable(make_macro(s, scope)));
      return Flow::normal;
    }
    case StmtKind::call_block: {
      scope->captured = true;
      Value caller = Value::callable(make_macro(s, scope));
      Value v = eval_call(*s.expr, scope, &caller);
      pos_ = s.pos;
      std::string text = py_str(v);
      emit(text);
      return Flow::normal;
    }
    case StmtKind::filter_block: {
      Value text = Value::string(capture(s.body, new_scope(scope)));
      Value v = eval_filter(*s.expr, scope, &text);
      std::string out = py_str(v);
      emit(out);
      return Flow::normal;
    }
    case StmtKind::with: {
      Scope* inner = new_scope(scope);
      for (size_t i = 0; i < s.params.size(); ++i) inner->set(s.params[i], eval(*s.defaults[i], scope));
      return exec_body(s.body, inner);
    }
    case StmtKind::break_:
      return Flow::break_;
    case StmtKind::continue_:
      return Flow::continue_;
    case StmtKind::scope:
      return exec_body(s.body, scope);
  }
  return Flow::normal;
}

void Interpreter::exec_for(const Stmt& s, Scope* scope, Flow* flow) {
  Value seq = eval(*s.expr, scope);
  pos_ = s.pos;
  std::vector<Value> items = py_iterate(seq);
  charge(items.size());
  if (s.cond) {
    // `for x in xs if cond`: jinja filters first, so loop.length and friends count the kept items only.
    Scope* fs = new_scope(scope);
    std::vector<Value> kept;
    for (auto& item : items) {
      fs->vars.clear();
      assign(*s.target, item, fs);
      if (eval(*s.cond, fs).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  auto ls = std::make_shared<LoopState>();
  auto shared = std::make_shared<const std::vector<Value>>(std::move(items));
  ls->items = shared;
  const std::vector<Value>& seq_items = *shared;
  for (size_t k = 0; k < seq_items.size(); ++k) {
    charge(1);
    // Each iteration starts from a fresh scope: variables set in the body do not survive the iteration.
    Scope* it = new_scope(scope);
    ls->index0 = k;
    pos_ = s.pos;
    assign(*s.target, seq_items[k], it);
    it->set("loop", Value::loop(ls));
    Flow f = exec_body(s.body, it);
    if (f == Flow::break_) break;
    // Scopes nobody captured (no macro defined in this iteration) can be dropped right away.
    if (!heap_.scopes.empty() && &heap_.scopes.back() == it && !it->captured) heap_.scopes.pop_back();
  }
  if (seq_items.empty()) *flow = exec_body(s.else_body, new_scope(scope));
}

void Interpreter::assign(const Expr& target, const Value& v, Scope* scope) {
  switch (target.kind) {
    case ExprKind::name:
      scope->set(target.name, v);
      return;
    case ExprKind::tuple: {
      std::vector<Value> items = py_iterate(v);
      size_t want = target.a.size();
      if (items.size() < want)
        fail("not enough values to unpack (expected " + std::to_string(want) + ", got " +
             std::to_string(items.size()) + ")");
      if (items.size() > want) fail("too many values to unpack (expected " + std::to_string(want) + ")");
      for (size_t i = 0; i < want; ++i) assign(*target.a[i], items[i], scope);
      return;
    }
    case ExprKind::nsref: {
      Value ns = lookup(target.name, scope);
      if (ns.kind() != Kind::ns)
        fail("cannot assign attribute '" + target.attr + "' on '" + target.name +
             "': it is not a namespace() object");
      ns.ns()->set(target.attr, v);
      return;
    }
    default:
      fail("cannot assign to this expression");
  }
}

Value Interpreter::call_macro(const Callable& m, Args args) {
  const Stmt& def = *m.def;
  DepthGuard guard(this);
  Scope* s = new_scope(m.closure);
  const size_t n = def.params.size();
  std::vector<bool> bound(n, false);
  size_t npos = std::min(args.pos.size(), n);
  for (size_t i = 0; i < npos; ++i) {
    s->set(def.params[i], args.pos[i]);
    bound[i] = true;
  }
  Dict extra_kw;
  bool have_caller = false;
  for (auto& [k, v] : args.kw) {
    auto it = std::find(def.params.begin(), def.params.end(), k);
    size_t idx = static_cast<size_t>(it - def.params.begin());
    if (it != def.params.end() && !bound[idx]) {
      s->set(k, v);
      bound[idx] = true;
    } else if (k == "caller" && def.uses_caller && !have_caller) {
      s->set("caller", v);
      have_caller = true;
    } else if (def.uses_kwargs) {
      extra_kw.set(k, v);
    } else if (k == "caller") {
      fail("macro '" + m.name + "' was invoked with two values for the special caller argument");
    } else {
      fail("macro '" + m.name + "' takes no keyword argument '" + k + "'");
    }
  }
  if (args.pos.size() > n && !def.uses_varargs)
    fail("macro '" + m.name + "' takes not more than " + std::to_string(n) + " argument(s)");
  if (def.uses_caller && !have_caller) s->set("caller", Value::undefined("No caller defined"));
  if (def.uses_kwargs) s->set("kwargs", make_dict(std::move(extra_kw)));
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = n; i < args.pos.size(); ++i) rest.push_back(args.pos[i]);
    s->set("varargs", Value::tuple(std::move(rest)));
  }
  const size_t first_default = n - def.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (bound[i]) continue;
    if (i >= first_default)
      s->set(def.params[i], eval(*def.defaults[i - first_default], s));
    else
      s->set(def.params[i], Value::undefined("parameter '" + def.params[i] + "' was not provided"));
  }
  std::string text = capture(def.body, s);
  if (&heap_.scopes.back() == s && !s->captured) heap_.scopes.pop_back();
  return Value::string(std::move(text));
}

// ---- expressions ------------------------------------------------------------------------------------------

Args Interpreter::eval_args(const Expr& e, Scope* scope) {
  Args args;
  args.pos.reserve(e.args.size());
  for (auto& a : e.args) args.pos.push_back(eval(*a, scope));
  for (auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v, scope));
  if (e.dyn_args) {
    Value extra = eval(*e.dyn_args, scope);
    pos_ = e.dyn_args->pos;
    for (auto& v : py_iterate(extra)) args.pos.push_back(v);
  }
  if (e.dyn_kwargs) {
    Value extra = eval(*e.dyn_kwargs, scope);
    pos_ = e.dyn_kwargs->pos;
    if (!extra.is_dict()) fail(std::string("argument after ** must be a mapping, not ") + extra.type_name());
    for (auto& [k, v] : extra.dict().items()) args.kw.emplace_back(k, v);
  }
  return args;
}

Value Interpreter::eval(const Expr& e, Scope* scope) {
  DepthGuard guard(this);
  charge(1);
  // Folding (jinja2's as_const) cannot read variables or call functions.
  if (folding_ && (e.kind == ExprKind::name || e.kind == ExprKind::call)) fail("not a constant");
  switch (e.kind) {
    case ExprKind::literal:
      return e.value;
    case ExprKind::name:
      return lookup(e.name, scope);
    case ExprKind::getattr: {
      Value obj = eval(*e.a[0], scope);
      pos_ = e.pos;
      return getattr(obj, e.name);
    }
    case ExprKind::getitem: {
      Value obj = eval(*e.a[0], scope);
      if (e.a[1]->kind == ExprKind::slice) return slice(obj, *e.a[1], scope);
      if (e.a[1]->kind == ExprKind::tuple) {
        // obj[a:b, c]: a tuple holding slices is no valid key for any value here; jinja2's getitem turns the
        // TypeError into undefined.
        for (auto& part : e.a[1]->a)
          if (part->kind == ExprKind::slice) {
            pos_ = e.pos;
            if (obj.is_undefined()) raise_undefined(obj);
            return Value::undefined(std::string("'") + obj.type_name() +
                                    "' object has no element (slice tuple)");
          }
      }
      Value key = eval(*e.a[1], scope);
      pos_ = e.pos;
      return getitem(obj, key);
    }
    case ExprKind::tuple:
    case ExprKind::list: {
      std::vector<Value> items;
      items.reserve(e.a.size());
      for (auto& c : e.a) items.push_back(eval(*c, scope));
      pos_ = e.pos;
      return Value::list(std::move(items), e.kind == ExprKind::tuple ? Seq::tuple : Seq::list);
    }
    case ExprKind::dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.a.size(); i += 2) {
        Value k = eval(*e.a[i], scope);
        Value v = eval(*e.a[i + 1], scope);
        pos_ = e.a[i]->pos;
        if (!k.is_string()) fail(std::string("dict keys must be strings here, got ") + k.type_name());
        d.set(k.str(), std::move(v));
      }
      return make_dict(std::move(d));
    }
    case ExprKind::unary: {
      Value v = eval(*e.a[0], scope);
      pos_ = e.pos;
      if (e.op == Op::not_) return Value::boolean(!v.truthy());
      if (v.is_undefined()) raise_undefined(v);
      if (v.is_float()) return Value::floating(e.op == Op::neg ? -v.as_double() : v.as_double());
      if (v.is_integral()) {
        int64_t i = v.as_int();
        if (e.op == Op::pos) return Value::integer(i);
        if (i == INT64_MIN) fail("integer overflow (tailor's integers are 64-bit)");
        return Value::integer(-i);
      }
      fail(std::string("bad operand type for unary ") + (e.op == Op::neg ? "-" : "+") + ": '" +
           v.type_name() + "'");
    }
    case ExprKind::binary: {
      Value a = eval(*e.a[0], scope);
      if (e.op == Op::and_) return a.truthy() ? eval(*e.a[1], scope) : a;
      if (e.op == Op::or_) return a.truthy() ? a : eval(*e.a[1], scope);
      Value b = eval(*e.a[1], scope);
      pos_ = e.pos;
      if (e.op == Op::pow && !folding_ && e.a[0]->kind == ExprKind::literal && e.a[0]->value.is_number() &&
          std::signbit(e.a[0]->value.as_double())) {
        // jinja2 writes a folded negative constant without parentheses: `(-3) ** x` runs as -(3 ** x).
        Value mag = e.a[0]->value.is_float() ? Value::floating(-e.a[0]->value.as_double())
                                             : Value::integer(-e.a[0]->value.as_int());
        Value r = arith(*this, Op::pow, mag, b);
        return r.is_float() ? Value::floating(-r.as_double()) : Value::integer(-r.as_int());
      }
      return arith(*this, e.op, a, b);
    }
    case ExprKind::concat: {
      std::string s;
      for (auto& c : e.a) {
        Value v = eval(*c, scope);
        append_str(s, v);
        check_size(s.size());
      }
      charge(s.size() / 64);
      return Value::string(std::move(s));
    }
    case ExprKind::compare:
      return eval_compare(e, scope);
    case ExprKind::cond: {
      if (eval(*e.a[0], scope).truthy()) return eval(*e.a[1], scope);
      if (e.a[2]) return eval(*e.a[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    case ExprKind::call:
      return eval_call(e, scope, nullptr);
    case ExprKind::filter:
      return eval_filter(e, scope, nullptr);
    case ExprKind::test: {
      Value v = eval(*e.a[0], scope);
      Args args = eval_args(e, scope);
      pos_ = e.pos;
      if (e.builtin < 0) fail("no test named '" + e.name + "'");
      return Value::boolean(apply_test(e.builtin, v, std::move(args)));
    }
    case ExprKind::slice:
    case ExprKind::nsref:
      break;
  }
  fail("this expression cannot be evaluated here");
}

Value Interpreter::eval_compare(const Expr& e, Scope* scope) {
  Value left = eval(*e.a[0], scope);
  for (size_t i = 0; i < e.cmp.size(); ++i) {
    Value right = eval(*e.a[i + 1], scope);
    pos_ = e.pos;
    bool ok = false;
    switch (e.cmp[i]) {
      case Cmp::eq:
        ok = py_equal(left, right);
        break;
      case Cmp::ne:
        ok = !py_equal(left, right);
        break;
      case Cmp::lt:
        ok = py_order(left, right) == -1;
        break;
      case Cmp::le: {
        int o = py_order(left, right);
        ok = o == -1 || o == 0;
        break;
      }
      case Cmp::gt:
        ok = py_order(left, right) == 1;
        break;
      case Cmp::ge: {
        int o = py_order(left, right);
        ok = o == 1 || o == 0;
        break;
      }
      case Cmp::in:
        ok = py_contains(right, left);
        break;
      case Cmp::not_in:
        ok = !py_contains(right, left);
        break;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_call(const Expr& e, Scope* scope, const Value* caller) {
  const Expr& callee = *e.a[0];
  if (callee.kind == ExprKind::getattr) {
    // obj.method(...): call the method directly instead of materialising a bound method.
    Value obj = eval(*callee.a[0], scope);
    pos_ = callee.pos;
    if (obj.is_undefined()) raise_undefined(obj);
    if (has_method(obj, callee.name)) {
      Args args = eval_args(e, scope);
      if (caller) args.kw.emplace_back("caller", *caller);
      pos_ = e.pos;
      return call_method(*this, obj, callee.name, args);
    }
    Value f = getattr(obj, callee.name);
    Args args = eval_args(e, scope);
    if (caller) args.kw.emplace_back("caller", *caller);
    pos_ = e.pos;
    return call(f, std::move(args));
  }
  Value f = eval(callee, scope);
  Args args = eval_args(e, scope);
  if (caller) args.kw.emplace_back("caller", *caller);
  pos_ = e.pos;
  return call(f, std::move(args));
}

Value Interpreter::call(const Value& f, Args args) {
  if (f.is_undefined()) raise_undefined(f);
  if (!f.is_callable()) fail(std::string("'") + f.type_name() + "' object is not callable");
  const Callable& c = *f.callable();
  switch (c.type) {
    case Callable::Type::builtin:
      return call_global(*this, c.id, args);
    case Callable::Type::macro:
      return call_macro(c, std::move(args));
    case Callable::Type::bound_method:
      return call_method(*this, c.self, c.name, args);
  }
  fail("not callable");
}

Value Interpreter::eval_filter(const Expr& e, Scope* scope, const Value* block_text) {
  Value operand;
  if (e.a[0])
    operand = e.a[0]->kind == ExprKind::filter && block_text ? eval_filter(*e.a[0], scope, block_text)
                                                             : eval(*e.a[0], scope);
  else if (block_text)
    operand = *block_text;
  Args args = eval_args(e, scope);
  pos_ = e.pos;
  if (e.builtin < 0) fail("no filter named '" + e.name + "'");
  return apply_filter(e.builtin, operand, std::move(args));
}

Value Interpreter::apply_filter(int id, const Value& operand, Args args) {
  DepthGuard guard(this);
  return run_filter(*this, id, operand, args);
}

bool Interpreter::apply_test(int id, const Value& v, Args args) {
  DepthGuard guard(this);
  return run_test(*this, id, v, args);
}

}  // namespace tailor::chat_template
