// Syntax tree of a parsed template. Nodes are "fat" structs: each kind uses the fields its comment names.
// Every node records the byte offset of its first token for error messages. Tree depth is bounded by the
// parser, so evaluating and destroying a tree never recurses deeper than kMaxTreeDepth.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template/value.h"

namespace tailor::chat_template {

inline constexpr int kMaxTreeDepth = 256;

enum class ExprKind : uint8_t {
  literal,  // value
  name,     // name
  nsref,    // name.attr as an assignment target (`set ns.x = ...`)
  getattr,  // a[0].name
  getitem,  // a[0][a[1]]
  slice,    // a[0]:a[1]:a[2] (each may be null); only inside getitem
  tuple,    // (a...)
  list,     // [a...]
  dict,     // {a[0]: a[1], a[2]: a[3], ...}
  unary,    // op a[0]
  binary,   // a[0] op a[1]
  concat,   // a[0] ~ a[1] ~ ...
  compare,  // a[0] cmp[0] a[1] cmp[1] a[2] ... (chained like Python)
  cond,     // a[1] if a[0] else a[2] (a[2] may be null)
  call,     // a[0](args, kwargs, *dyn_args, **dyn_kwargs)
  filter,   // a[0] | name(args...); a[0] is null in {% filter %} blocks
  test,     // a[0] is name(args...)
};

enum class Op : uint8_t { neg, pos, not_, add, sub, mul, div, floordiv, mod, pow, and_, or_ };
enum class Cmp : uint8_t { eq, ne, lt, le, gt, ge, in, not_in };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  size_t pos = 0;
  int depth = 1;
  Op op = Op::add;
  Value value;
  std::string name;
  std::string attr;  // nsref
  std::vector<ExprPtr> a;
  std::vector<Cmp> cmp;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args, dyn_kwargs;
  int builtin = -1;  // filter/test: index in the builtin table, -1 when unknown (fails when reached)
  // Built from literals only. jinja2 folds such expressions at compile time, through its lenient getitem: a
  // constant slice of a non-sequence yields undefined where a runtime one raises.
  bool is_const = false;
};

enum class StmtKind : uint8_t {
  data,          // text
  output,        // {{ expr }}
  if_,           // if expr: body, elif elifs..., else else_body
  for_,          // for target in expr [if cond]: body, else else_body
  set,           // set target = expr
  set_block,     // set target [| filter expr]: body ... endset
  macro,         // macro text(params=defaults): body
  call_block,    // call(params) expr: body  (body is the `caller` macro)
  filter_block,  // filter expr: body  (expr is a filter chain whose innermost operand is null)
  with,          // with params=defaults: body
  break_,
  continue_,
  scope,  // body in place ({% generation %})
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind;
  size_t pos = 0;
  std::string text;
  ExprPtr expr, target, cond;
  std::vector<StmtPtr> body, else_body;
  std::vector<std::pair<ExprPtr, std::vector<StmtPtr>>> elifs;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // default of params[params.size() - defaults.size() + i]
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
};

struct Program {
  std::string source;  // normalised source: positions index into it
  std::vector<StmtPtr> body;
};

}  // namespace tailor::chat_template
