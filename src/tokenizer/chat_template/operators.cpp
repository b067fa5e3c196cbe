// Python operators and jinja2's attribute / item lookup (jinja2/sandbox.py getattr/getitem: attribute first
// for `a.b`, item first for `a[b]`, undefined instead of an error when neither exists).
#include <cmath>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

[[noreturn]] void unsupported_operands(const char* op, const Value& a, const Value& b) {
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (std::string(op) == "+" && a.is_string())
    fail(std::string("can only concatenate str (not \"") + b.type_name() + "\") to str");
  fail(std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" +
       b.type_name() + "'");
}

// Integer + - * with Python's result, or an error where Python would need a big integer.
int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("integer overflow (tailor's integers are 64-bit)");
  return r;
}
int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) fail("integer overflow (tailor's integers are 64-bit)");
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("integer overflow (tailor's integers are 64-bit)");
  return r;
}

// Python's float floor division and modulo (Objects/floatobject.c float_divmod).
void float_divmod(double vx, double wx, double* floordiv, double* mod) {
  if (wx == 0.0) fail("float division by zero");
  double m = std::fmod(vx, wx);
  double div = (vx - m) / wx;
  if (m != 0.0) {
    if ((wx < 0) != (m < 0)) {
      m += wx;
      div -= 1.0;
    }
  } else {
    m = std::copysign(0.0, wx);
  }
  double fd;
  if (div != 0.0) {
    fd = std::floor(div);
    if (div - fd > 0.5) fd += 1.0;
  } else {
    fd = std::copysign(0.0, vx / wx);
  }
  *floordiv = fd;
  *mod = m;
}

Value repeat(Interpreter& in, const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    size_t len = seq.str().size();
    if (len && static_cast<uint64_t>(n) > (static_cast<uint64_t>(1) << 40) / len) in.check_size(SIZE_MAX);
    in.check_size(len * static_cast<size_t>(n));
    in.charge(len * static_cast<size_t>(n) / 64);
    std::string out;
    out.reserve(len * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out), seq.is_markup());
  }
  size_t len = seq.items().size();
  if (len && static_cast<uint64_t>(n) > 10'000'000 / len) fail("list repetition is too large");
  in.charge(len * static_cast<size_t>(n));
  std::vector<Value> out;
  out.reserve(len * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.seq());
}

}  // namespace

Value arith(Interpreter& in, Op op, const Value& a, const Value& b) {
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && a.is_integral() && b.is_integral();
  switch (op) {
    case Op::add:
      if (ints) return Value::integer(checked_add(a.as_int(), b.as_int()));
      if (nums) return Value::floating(a.as_double() + b.as_double());
      if (a.is_string() && b.is_string()) {
        in.check_size(a.str().size() + b.str().size());
        in.charge((a.str().size() + b.str().size()) / 64);
        // markupsafe: Markup + str escapes the plain side.
        if (a.is_markup() != b.is_markup()) {
          std::string l = a.is_markup() ? a.str() : html_escape(a.str());
          std::string rr = b.is_markup() ? b.str() : html_escape(b.str());
          return Value::string(l + rr, true);
        }
        return Value::string(a.str() + b.str(), a.is_markup());
      }
      if (a.is_sequence() && b.is_sequence() && a.is_tuple() == b.is_tuple()) {
        in.charge(a.items().size() + b.items().size());
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items), a.seq());
      }
      unsupported_operands("+", a, b);
    case Op::sub:
      if (ints) return Value::integer(checked_sub(a.as_int(), b.as_int()));
      if (nums) return Value::floating(a.as_double() - b.as_double());
      unsupported_operands("-", a, b);
    case Op::mul:
      if (ints) return Value::integer(checked_mul(a.as_int(), b.as_int()));
      if (nums) return Value::floating(a.as_double() * b.as_double());
      if ((a.is_string() || a.is_sequence()) && b.is_integral()) return repeat(in, a, b.as_int());
      if ((b.is_string() || b.is_sequence()) && a.is_integral()) return repeat(in, b, a.as_int());
      unsupported_operands("*", a, b);
    case Op::div:
      if (nums) {
        if (b.as_double() == 0.0) fail("division by zero");
        return Value::floating(a.as_double() / b.as_double());
      }
      unsupported_operands("/", a, b);
    case Op::floordiv:
    case Op::mod: {
      if (ints) {
        int64_t x = a.as_int(), y = b.as_int();
        if (y == 0) fail(op == Op::mod ? "integer modulo by zero" : "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) fail("integer overflow (tailor's integers are 64-bit)");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          q -= 1;
          m += y;
        }
        return Value::integer(op == Op::mod ? m : q);
      }
      if (nums) {
        double fd, m;
        float_divmod(a.as_double(), b.as_double(), &fd, &m);
        return Value::floating(op == Op::mod ? m : fd);
      }
      if (op == Op::mod && a.is_string()) {
        std::string s = percent_format(in, a.str(), b);
        return Value::string(std::move(s), a.is_markup());
      }
      unsupported_operands(op == Op::mod ? "%" : "//", a, b);
    }
    case Op::pow: {
      if (ints && b.as_int() >= 0) {
        int64_t base = a.as_int(), e = b.as_int(), result = 1;
        while (e > 0) {
          if (e & 1) result = checked_mul(result, base);
          e >>= 1;
          if (e) base = checked_mul(base, base);
        }
        return Value::integer(result);
      }
      if (nums) {
        double x = a.as_double(), y = b.as_double();
        if (x == 0.0 && y < 0) fail("0.0 cannot be raised to a negative power");
        if (x < 0 && y != std::floor(y)) fail("complex results are not supported");
        double r = std::pow(x, y);
        if (std::isinf(r) && std::isfinite(x) && std::isfinite(y))
          fail("(34, 'Numerical result out of range')");
        return Value::floating(r);
      }
      unsupported_operands("** or pow()", a, b);
    }
    default:
      break;
  }
  fail("unsupported operator");
}

// ---- attribute and item lookup ----------------------------------------------------------------------------

namespace {

std::string object_name(const Value& obj) {
  if (obj.is_none()) return "'None'";
  return std::string("'") + obj.type_name() + " object'";
}

Value no_attribute(const Value& obj, std::string_view name) {
  return Value::undefined(object_name(obj) + " has no attribute '" + std::string(name) + "'");
}

Value loop_attribute(const LoopState& l, std::string_view name) {
  const int64_t n = static_cast<int64_t>(l.items->size());
  const int64_t i = static_cast<int64_t>(l.index0);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(l.depth0 + 1);
  if (name == "depth0") return Value::integer(l.depth0);
  if (name == "previtem")
    return i > 0 ? (*l.items)[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? (*l.items)[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item");
  return Value::undefined("'LoopContext object' has no attribute '" + std::string(name) + "'");
}

// Python indexing of a sequence with an int (negative counts from the end); nullopt when out of range.
bool index_of(int64_t idx, size_t len, size_t* out) {
  int64_t n = static_cast<int64_t>(len);
  if (idx < 0) idx += n;
  if (idx < 0 || idx >= n) return false;
  *out = static_cast<size_t>(idx);
  return true;
}

}  // namespace

Value Interpreter::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) raise_undefined(obj);
  // The sandbox hides private attributes.
  if (!name.empty() && name[0] == '_') return no_attribute(obj, name);
  if (is_unsafe_method(obj, name))
    return Value::undefined("access to attribute '" + std::string(name) + "' of '" + obj.type_name() +
                            "' object is unsafe.");
  switch (obj.kind()) {
    case Kind::dict:
      if (has_method(obj, name)) return bound_method(obj, name);
      if (const Value* v = obj.dict().find(name)) return *v;
      return no_attribute(obj, name);
    case Kind::ns:
      if (const Value* v = obj.ns()->find(name)) return *v;
      return no_attribute(obj, name);
    case Kind::loop:
      if (name == "cycle" || name == "changed") return bound_method(obj, name);
      return loop_attribute(*obj.loop(), name);
    case Kind::string:
    case Kind::list:
      if (has_method(obj, name)) return bound_method(obj, name);
      return no_attribute(obj, name);
    case Kind::integer:
    case Kind::boolean:
      if (name == "real" || name == "numerator") return Value::integer(obj.as_int());
      if (name == "imag") return Value::integer(0);
      if (name == "denominator") return Value::integer(1);
      return no_attribute(obj, name);
    case Kind::floating:
      if (name == "real") return obj;
      if (name == "imag") return Value::floating(0.0);
      return no_attribute(obj, name);
    default:
      return no_attribute(obj, name);
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  size_t idx;
  switch (obj.kind()) {
    case Kind::list:
      if (key.is_integral() && obj.is_indexable()) {
        if (index_of(key.as_int(), obj.items().size(), &idx)) return obj.items()[idx];
        return Value::undefined(object_name(obj) + " has no element " + py_repr(key));
      }
      break;
    case Kind::string:
      if (key.is_integral()) {
        const std::string& s = obj.str();
        if (is_ascii(s)) {
          if (index_of(key.as_int(), s.size(), &idx)) return Value::string(s.substr(idx, 1), obj.is_markup());
        } else {
          std::vector<size_t> off = cp_offsets(s);
          if (index_of(key.as_int(), off.size() - 1, &idx))
            return Value::string(s.substr(off[idx], off[idx + 1] - off[idx]), obj.is_markup());
        }
        return Value::undefined(object_name(obj) + " has no element " + py_repr(key));
      }
      break;
    case Kind::dict:
      // An unhashable key is a TypeError that jinja2's getitem turns into undefined, like a missing key.
      if (key.is_string())
        if (const Value* v = obj.dict().find(key.str())) return *v;
      break;
    case Kind::ns:
      if (key.is_string())
        if (const Value* v = obj.ns()->find(key.str())) return *v;
      break;
    default:
      break;
  }
  // jinja2 falls back to the attribute of that name.
  if (key.is_string()) {
    Value v = getattr(obj, key.str());
    if (!v.is_undefined()) return v;
    return Value::undefined(object_name(obj) + " has no attribute '" + key.str() + "'");
  }
  return Value::undefined(object_name(obj) + " has no element " + py_repr(key));
}

Value Interpreter::slice(const Value& obj, const Expr& sl, Scope* scope) {
  Value parts[3];
  for (int i = 0; i < 3; ++i) parts[i] = sl.a[i] ? eval(*sl.a[i], scope) : Value::none();
  pos_ = sl.pos;
  if (obj.is_undefined()) raise_undefined(obj);
  if (!folding_) return slice_values(obj, parts);
  try {
    return slice_values(obj, parts);
  } catch (const TemplateError& err) {
    // jinja2's constant folding goes through the sandbox's getitem, which turns TypeErrors into undefined.
    if (err.message.find("slice step cannot be zero") != std::string::npos) throw;
    return Value::undefined(err.message);
  }
}

Value Interpreter::slice_values(const Value& obj, const Value (&parts)[3]) {
  // jinja2 compiles a slice to a plain Python subscript (not the sandbox's lenient getitem): errors
  // propagate.
  if (obj.is_dict()) fail("unhashable type: 'slice'");
  if (!obj.is_string() && !obj.is_indexable())
    fail(std::string("'") + obj.type_name() + "' object is not subscriptable");
  for (auto& p : parts) {
    if (!p.is_none() && !p.is_integral())
      fail("slice indices must be integers or None or have an __index__ method");
  }
  int64_t step = parts[2].is_none() ? 1 : parts[2].as_int();
  if (step == 0) fail("slice step cannot be zero");
  std::vector<size_t> off;
  int64_t len;
  if (obj.is_string()) {
    off = cp_offsets(obj.str());
    len = static_cast<int64_t>(off.size() - 1);
  } else {
    len = static_cast<int64_t>(obj.items().size());
  }
  // PySlice_AdjustIndices.
  int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? len - 1 : len;
  auto adjust = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t x = v.as_int();
    if (x < 0) {
      x = x < -len ? lower : x + len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  int64_t start = adjust(parts[0], step < 0 ? upper : lower);
  int64_t stop = adjust(parts[1], step < 0 ? lower : upper);
  std::vector<int64_t> picks;
  // 128-bit counter: start + step may pass the int64 range on the last step.
  for (__int128 i = start; step > 0 ? i < stop : i > stop; i += step)
    picks.push_back(static_cast<int64_t>(i));
  charge(picks.size());
  if (obj.is_string()) {
    std::string out;
    const std::string& s = obj.str();
    for (int64_t i : picks)
      out.append(s, off[static_cast<size_t>(i)],
                 off[static_cast<size_t>(i) + 1] - off[static_cast<size_t>(i)]);
    return Value::string(std::move(out), obj.is_markup());
  }
  if (obj.seq() == Seq::range) {
    // Slicing a range gives a range (CPython's compute_slice).
    const List& r = obj.list();
    __int128 a = static_cast<__int128>(r.range_start) + static_cast<__int128>(start) * r.range_step;
    __int128 b = static_cast<__int128>(r.range_start) + static_cast<__int128>(stop) * r.range_step;
    __int128 c = static_cast<__int128>(r.range_step) * step;
    for (__int128 x : {a, b, c})
      if (x > INT64_MAX || x < INT64_MIN) fail("integer overflow (tailor's integers are 64-bit)");
    return Value::range(static_cast<int64_t>(a), static_cast<int64_t>(b), static_cast<int64_t>(c));
  }
  std::vector<Value> out;
  out.reserve(picks.size());
  for (int64_t i : picks) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return Value::list(std::move(out), obj.seq());
}

}  // namespace tailor::chat_template
