// Builtin filters, tests, global functions and methods of str / dict / list / loop, with jinja2's and
// Python's semantics (jinja2/filters.py, jinja2/tests.py, transformers' tojson / raise_exception /
// strftime_now).
#pragma once

#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>

#include "tokenizer/chat_template/interpreter.h"

namespace tailor::chat_template {

// Index of a filter or test in the builtin tables, or -1.
int find_filter(std::string_view name);
int find_test(std::string_view name);
// Whether stock jinja2 has a filter / test of that name (for "unsupported" vs "unknown" messages).
bool jinja_has_filter(std::string_view name);
bool jinja_has_test(std::string_view name);
const char* filter_name(int id);
const char* test_name(int id);

Value run_filter(Interpreter& in, int id, const Value& v, Args& args);
bool run_test(Interpreter& in, int id, const Value& v, Args& args);

// Global functions: range, dict, namespace, raise_exception, strftime_now, ... (ids for Callable::id).
void add_globals(Scope* scope);
Value call_global(Interpreter& in, int id, Args& args);

// Methods: `obj.name(...)`. has_method says whether Python's type has an attribute of that name (so
// `obj.name` is a bound method rather than an item lookup).
bool has_method(const Value& obj, std::string_view name);
Value call_method(Interpreter& in, const Value& obj, std::string_view name, Args& args);
// Mutating methods the immutable sandbox hides (`d.update`, `l.append`): they read as undefined.
bool is_unsafe_method(const Value& obj, std::string_view name);

// The Python json.dumps transformers' tojson filter calls (ensure_ascii=False by default).
struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_indent = false;
  std::string indent;  // the indent unit when has_indent
  std::string item_sep = ", ", key_sep = ": ";
};
std::string json_dumps(const Value& v, const JsonDumpOptions& opt);

// Python's float(text) and int(text, base) (whitespace, signs, underscores, prefixes; false when Python
// raises ValueError).
bool parse_py_float(const std::string& text, double* out);
bool parse_py_int(const std::string& text, int64_t base, int64_t* out);

// Python's printf-style `str % args` and str.format().
std::string percent_format(Interpreter& in, const std::string& fmt, const Value& args);
std::string str_format(Interpreter& in, const std::string& fmt, Args& args);

// Python str methods shared by filters and methods (code-point aware; `chars`/`sep` null means whitespace).
std::string py_strip(std::string_view s, const std::string* chars,
                     int which);  // which: 0 both, 1 left, 2 right
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit,
                                  bool from_right);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count,
                       Interpreter& in);
std::string py_center(std::string_view s, int64_t width, std::string_view fill);

// Binds call arguments to named parameters (Python semantics: positional first, then keywords).
class ArgBinder {
 public:
  ArgBinder(const char* what, Args& args, std::initializer_list<const char*> names);
  bool has(size_t i) const { return slots_[i] != nullptr; }
  const Value& get(size_t i) const { return *slots_[i]; }
  Value get_or(size_t i, Value def) const { return slots_[i] ? *slots_[i] : std::move(def); }
  const Value& required(size_t i) const;

 private:
  const char* what_;
  std::vector<const char*> names_;
  std::vector<const Value*> slots_;
};

}  // namespace tailor::chat_template
