// Tree-walking interpreter for a parsed template. One Interpreter renders once: it owns the Heap (scopes,
// namespaces, loops, macros) for that render, enforces the limits (output size, steps, call depth) and
// reports errors as TemplateError with the position of the node being evaluated.
#pragma once

#include <cstdint>
#include <ctime>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/chat_template/ast.h"
#include "tokenizer/chat_template/value.h"

namespace tailor::chat_template {

// A variable scope: the template's top level, a for-loop iteration, a macro call, a with block.
struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  bool captured = false;  // a macro defined here keeps a pointer to this scope
  const Value* find_local(std::string_view name) const;
  void set(const std::string& name, Value v);
};

struct Callable {
  enum class Type : uint8_t { builtin, macro, bound_method };
  Type type;
  std::string name;
  int id = -1;                // builtin: global function id
  const Stmt* def = nullptr;  // macro: its definition ({% macro %} or the body of {% call %})
  Scope* closure = nullptr;   // macro: the scope it was defined in
  Value self;                 // bound method: the receiver
};

// What a render allocates that values point to by raw pointer (so that cycles cannot leak); freed together
// when the render ends.
struct Heap {
  std::deque<Scope> scopes;
  std::deque<Namespace> namespaces;
};

struct Limits {
  size_t max_output_bytes = size_t{64} << 20;  // also bounds any single string value
  uint64_t max_steps = 50'000'000;             // statements, expressions, loop iterations, bytes copied / 64
  int max_depth = 1000;                        // nested evaluation frames (macro recursion included)
};

// Call arguments: positional, then keyword (in call order).
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

class Interpreter {
 public:
  Interpreter(const Program& prog, const Limits& limits, std::optional<std::time_t> now);

  // Renders with `context` (a dict value) as the template's variables.
  std::string render(const Value& context);
  // Evaluates a constant expression the way jinja2's optimizer folds it at compile time (see fold.cpp).
  Value fold(const Expr& e);

  // ---- used by builtins --------------------------------------------------------------------------------
  Value call(const Value& callee, Args args);
  Value getattr(const Value& obj, std::string_view name);
  Value getitem(const Value& obj, const Value& key);
  Value apply_filter(int id, const Value& operand, Args args);
  bool apply_test(int id, const Value& v, Args args);
  // Counts work proportional to n units (bytes / 64, elements) against the step budget.
  void charge(uint64_t units);
  // Fails when a string of `bytes` would exceed the size limit.
  void check_size(size_t bytes) const;
  Namespace* new_namespace() { return &heap_.namespaces.emplace_back(); }
  Value bound_method(const Value& self, std::string_view name);
  std::time_t now() const;
  size_t pos() const { return pos_; }

 private:
  enum class Flow { normal, break_, continue_ };

  const Program& prog_;
  Limits limits_;
  std::optional<std::time_t> now_;
  Heap heap_;
  Scope* globals_ = nullptr;  // context variables + builtin functions
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int depth_ = 0;
  size_t pos_ = 0;
  bool folding_ = false;

  struct DepthGuard {
    Interpreter* in;
    explicit DepthGuard(Interpreter* i);
    ~DepthGuard() { --in->depth_; }
  };

  Scope* new_scope(Scope* parent);
  Value lookup(const std::string& name, Scope* scope);
  void emit(std::string_view s);

  Flow exec_body(const std::vector<StmtPtr>& body, Scope* scope);
  Flow exec(const Stmt& s, Scope* scope);
  void exec_for(const Stmt& s, Scope* scope, Flow* flow);
  std::string capture(const std::vector<StmtPtr>& body, Scope* scope);
  void assign(const Expr& target, const Value& v, Scope* scope);
  Value call_macro(const Callable& m, Args args);

  Value eval(const Expr& e, Scope* scope);
  Value eval_binary(const Expr& e, Scope* scope);
  Value eval_compare(const Expr& e, Scope* scope);
  Value eval_call(const Expr& e, Scope* scope, const Value* caller);
  Value eval_filter(const Expr& e, Scope* scope, const Value* block_text);
  Args eval_args(const Expr& e, Scope* scope);
  Value slice(const Value& obj, const Expr& sl, Scope* scope);
  Value slice_values(const Value& obj, const Value (&parts)[3]);
};

// Python arithmetic on values (jinja's + - * / // % **); throws TypeError-like errors.
Value arith(Interpreter& in, Op op, const Value& a, const Value& b);
// Escapes & < > ' " the way markupsafe does.
std::string html_escape(std::string_view s);

}  // namespace tailor::chat_template
