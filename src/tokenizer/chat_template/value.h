// Runtime values of the template interpreter, modelled on the Python objects jinja2 works with: None, bool,
// int, float, str (with jinja's Markup flag), list/tuple, dict (insertion-ordered, string keys), plus jinja's
// Undefined, namespace(), loop and callables (macros, builtins, bound methods).
//
// Lists, dicts and strings are immutable and shared (the immutable sandbox transformers uses forbids mutating
// them); so are callables and loop states, which cannot reach themselves. Namespaces and scopes are owned by
// the render's Heap and referenced by raw pointer, so reference cycles (`set ns.me = ns`) cannot leak.
// Nesting depth of lists/dicts is bounded at construction so neither printing nor destruction can overflow
// the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tailor::chat_template {

// An error raised while parsing or rendering; caught at the ChatTemplate boundary and turned into a Status.
// `pos` is a byte offset into the (newline-normalised) template source, or npos when the interpreter should
// use the position of the node it was evaluating.
struct TemplateError {
  static constexpr size_t npos = static_cast<size_t>(-1);
  std::string message;
  size_t pos = npos;
  bool raised = false;  // from raise_exception(): the template author's message
  bool eager = false;   // an argument-binding error: raised at the call even by lazy (generator) filters
};
[[noreturn]] void fail(std::string message);

// Deepest list/dict nesting a value may have; also the recursion limit of printing and serialising.
inline constexpr int kMaxValueDepth = 200;

enum class Kind : uint8_t {
  undefined,
  none,
  boolean,
  integer,
  floating,
  string,
  list,
  dict,
  callable,
  ns,
  loop
};

// Python sequence types a "list" value stands for. Generators (what jinja's map/select/... filters return)
// are always truthy and have no len(); dict views print as dict_items([...]) etc.
enum class Seq : uint8_t {
  list,
  tuple,
  generator,
  reverse_iterator,
  dict_items,
  dict_keys,
  dict_values,
  range
};

class Value;
struct List;
class Dict;
struct Callable;
struct Namespace;
struct LoopState;
using StrPtr = std::shared_ptr<const std::string>;
using ListPtr = std::shared_ptr<const List>;
using DictPtr = std::shared_ptr<const Dict>;

class Value {
 public:
  Value() = default;                         // undefined
  static Value undefined(std::string hint);  // hint: the error to give when the value is used
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s, bool markup = false);
  static Value string(StrPtr s, bool markup = false);
  static Value list(std::vector<Value> items, Seq seq = Seq::list);
  static Value list(ListPtr l, Seq seq = Seq::list);
  static Value tuple(std::vector<Value> items) { return list(std::move(items), Seq::tuple); }
  // A generator that raises `error` when consumed.
  static Value failed_generator(std::string error);
  // range(start, stop, step) (the caller bounds its length).
  static Value range(int64_t start, int64_t stop, int64_t step);
  static Value dict(DictPtr d);
  static Value callable(std::shared_ptr<const Callable> c);
  static Value ns(Namespace* n);
  static Value loop(std::shared_ptr<LoopState> l);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_float() const { return kind_ == Kind::floating; }
  // Python's numbers.Number: bool, int, float.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_integral() const { return is_bool() || is_int(); }  // usable as an index
  bool is_string() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }  // any Seq
  bool is_tuple() const { return kind_ == Kind::list && sub_ == static_cast<uint8_t>(Seq::tuple); }
  bool is_plain_list() const { return kind_ == Kind::list && sub_ == static_cast<uint8_t>(Seq::list); }
  // list or tuple: concatenable, serialisable
  bool is_sequence() const { return is_plain_list() || is_tuple(); }
  // list, tuple or range: indexable, sliceable
  bool is_indexable() const { return is_sequence() || (kind_ == Kind::list && seq() == Seq::range); }
  Seq seq() const { return static_cast<Seq>(sub_); }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_callable() const { return kind_ == Kind::callable; }
  bool is_markup() const { return kind_ == Kind::string && sub_; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::boolean ? (b_ ? 1 : 0) : i_; }
  double as_double() const { return kind_ == Kind::floating ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *static_cast<const std::string*>(p_.get()); }
  StrPtr str_ptr() const { return std::static_pointer_cast<const std::string>(p_); }
  const List& list() const { return *static_cast<const List*>(p_.get()); }
  ListPtr list_ptr() const { return std::static_pointer_cast<const List>(p_); }
  const std::vector<Value>& items() const;
  const Dict& dict() const { return *static_cast<const Dict*>(p_.get()); }
  DictPtr dict_ptr() const { return std::static_pointer_cast<const Dict>(p_); }
  const Callable* callable() const { return static_cast<const Callable*>(p_.get()); }
  Namespace* ns() const { return ns_; }
  LoopState* loop() const { return const_cast<LoopState*>(static_cast<const LoopState*>(p_.get())); }
  // The message jinja would give when this undefined value is used ("'foo' is undefined").
  std::string undefined_hint() const;
  // Nesting depth of lists/dicts (0 for scalars).
  int depth() const;

  bool truthy() const;            // Python bool()
  const char* type_name() const;  // Python type name for error messages ("str", "NoneType", ...)

 private:
  Kind kind_ = Kind::undefined;
  uint8_t sub_ = 0;  // string: 1 for Markup; list: Seq
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
    Namespace* ns_;
  };
  std::shared_ptr<const void> p_;  // string, List, Dict, Callable, LoopState, or the undefined hint
};

struct List {
  std::vector<Value> items;
  int depth = 1;
  // Generators evaluate lazily in Python: an error met while building one is raised only when it is consumed.
  std::string deferred_error;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // Seq::range
};

// An insertion-ordered dict with string keys (the only keys JSON and chat templates produce).
class Dict {
 public:
  // Inserts or replaces (a replaced key keeps its first position, as in Python).
  void set(std::string key, Value v);
  const Value* find(std::string_view key) const;
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  int depth() const { return depth_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
  std::unordered_map<std::string, size_t> index_;  // built once the dict grows past a few keys
  int depth_ = 1;
};

// Builds a dict value; throws when nesting gets too deep.
Value make_dict(Dict d);

// jinja2's namespace(): the one mutable object templates have.
struct Namespace {
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

// The state behind `loop` in a for loop.
struct LoopState {
  std::shared_ptr<const std::vector<Value>> items;  // the (filtered) sequence being iterated
  size_t index0 = 0;
  int depth0 = 0;
  Value changed_value;  // last arguments of loop.changed()
  bool has_changed_value = false;
};

// ---- Python semantics -----------------------------------------------------------------------------------

// str(v) and repr(v), appended to out.
void append_str(std::string& out, const Value& v);
void append_repr(std::string& out, const Value& v, int depth = 0);
std::string py_str(const Value& v);
std::string py_repr(const Value& v);
// repr() of a str: quotes chosen as Python does, escapes for non-printable characters.
void append_str_repr(std::string& out, std::string_view s);
// repr() of a float: the shortest round-trip digits, Python's exponent rules ("1e-05", "1e+16", "2.0").
std::string float_repr(double d);

// ==; never throws (except on absurd nesting).
bool py_equal(const Value& a, const Value& b, int depth = 0);
// Ordering for <, <=, >, >=: -1, 0, 1, or 2 when unordered (NaN). Throws a TypeError-like error for types
// Python cannot order.
int py_order(const Value& a, const Value& b, int depth = 0);
// `needle in haystack`.
bool py_contains(const Value& haystack, const Value& needle);
// Iterates like Python's iter(): list/tuple items, dict keys, string characters; undefined is empty.
// Throws for non-iterables.
std::vector<Value> py_iterate(const Value& v);
// len(); throws for values without a length.
int64_t py_len(const Value& v);
// repr() of a macro or builtin (defined by the interpreter).
std::string callable_repr(const Callable& c);
// Raises Python's "unhashable type" TypeError for values that cannot be dict keys or set members.
void require_hashable(const Value& v, int depth = 0);
// Undefined values raise their hint as an error (jinja's UndefinedError).
void raise_undefined(const Value& v);

}  // namespace tailor::chat_template
