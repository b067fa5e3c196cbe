// jinja2's builtin tests (jinja2/tests.py): `x is defined`, `x is string`, `x is divisibleby(3)`, ...
#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

namespace {

bool t_odd(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("odd", a, {});
  return py_equal(arith(in, Op::mod, v, Value::integer(2)), Value::integer(1));
}
bool t_even(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("even", a, {});
  return py_equal(arith(in, Op::mod, v, Value::integer(2)), Value::integer(0));
}
bool t_divisibleby(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("divisibleby", a, {"num"});
  return py_equal(arith(in, Op::mod, v, b.required(0)), Value::integer(0));
}
bool t_defined(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("defined", a, {});
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("undefined", a, {});
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("none", a, {});
  return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("boolean", a, {});
  return v.is_bool();
}
bool t_false(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("false", a, {});
  return v.is_bool() && !v.as_bool();
}
bool t_true(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("true", a, {});
  return v.is_bool() && v.as_bool();
}
bool t_integer(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("integer", a, {});
  return v.is_int();
}
bool t_float(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("float", a, {});
  return v.is_float();
}
bool t_lower(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("lower", a, {});
  return py_islower(py_str(v));
}
bool t_upper(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("upper", a, {});
  return py_isupper(py_str(v));
}
bool t_string(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("string", a, {});
  return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("mapping", a, {});
  return v.is_dict();
}
bool t_number(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("number", a, {});
  return v.is_number();
}
bool t_sequence(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("sequence", a, {});
  // len() and __getitem__: str, list, tuple, dict, and jinja's Undefined.
  return v.is_string() || v.is_indexable() || v.is_dict() || v.is_undefined();
}
bool t_iterable(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("iterable", a, {});
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined() || v.kind() == Kind::loop;
}
bool t_callable(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("callable", a, {});
  return v.is_callable() || v.is_undefined() || v.kind() == Kind::loop;
}
bool t_sameas(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("sameas", a, {"other"});
  const Value& o = b.required(0);
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Kind::none:
    case Kind::undefined:
      return v.is_none() || false;
    case Kind::boolean:
      return v.as_bool() == o.as_bool();
    case Kind::integer:
      return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case Kind::string:
      return v.str_ptr() == o.str_ptr();
    case Kind::list:
      return v.list_ptr() == o.list_ptr();
    case Kind::dict:
      return v.dict_ptr() == o.dict_ptr();
    case Kind::ns:
      return v.ns() == o.ns();
    case Kind::callable:
      return v.callable() == o.callable();
    case Kind::loop:
      return v.loop() == o.loop();
    default:
      return false;
  }
}
bool t_escaped(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("escaped", a, {});
  return v.is_markup();
}
bool t_in(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("in", a, {"seq"});
  return py_contains(b.required(0), v);
}
bool t_eq(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("eq", a, {"other"});
  return py_equal(v, b.required(0));
}
bool t_ne(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("ne", a, {"other"});
  return !py_equal(v, b.required(0));
}
bool t_lt(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("lt", a, {"other"});
  return py_order(v, b.required(0)) == -1;
}
bool t_le(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("le", a, {"other"});
  int o = py_order(v, b.required(0));
  return o == -1 || o == 0;
}
bool t_gt(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("gt", a, {"other"});
  return py_order(v, b.required(0)) == 1;
}
bool t_ge(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("ge", a, {"other"});
  int o = py_order(v, b.required(0));
  return o == 1 || o == 0;
}
bool t_filter(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("filter", a, {});
  return v.is_string() && find_filter(v.str()) >= 0;
}
bool t_test(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("test", a, {});
  return v.is_string() && find_test(v.str()) >= 0;
}

struct TestDef {
  const char* name;
  bool (*fn)(Interpreter&, const Value&, Args&);
};

const TestDef kTests[] = {
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"lower", t_lower},
    {"upper", t_upper},
    {"string", t_string},
    {"mapping", t_mapping},
    {"number", t_number},
    {"sequence", t_sequence},
    {"iterable", t_iterable},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"escaped", t_escaped},
    {"in", t_in},
    {"==", t_eq},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"!=", t_ne},
    {"ne", t_ne},
    {">", t_gt},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">=", t_ge},
    {"ge", t_ge},
    {"<", t_lt},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<=", t_le},
    {"le", t_le},
    {"filter", t_filter},
    {"test", t_test},
};

}  // namespace

int find_test(std::string_view name) {
  for (size_t i = 0; i < sizeof kTests / sizeof kTests[0]; ++i)
    if (name == kTests[i].name) return static_cast<int>(i);
  return -1;
}

bool jinja_has_test(std::string_view) {
  return false;
}

const char* test_name(int id) {
  return kTests[id].name;
}

bool run_test(Interpreter& in, int id, const Value& v, Args& args) {
  return kTests[id].fn(in, v, args);
}

}  // namespace tailor::chat_template
