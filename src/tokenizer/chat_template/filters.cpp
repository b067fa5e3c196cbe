// jinja2's builtin filters and tests (jinja2/filters.py, jinja2/tests.py), with transformers' tojson.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

namespace {

// jinja2's soft_str: strings (and Markup) pass through, anything else becomes str(value).
Value soft_str(const Value& v) {
  return v.is_string() ? v : Value::string(py_str(v));
}

Value ignore_case(const Value& v) {
  return v.is_string() ? Value::string(py_lower(v.str())) : v;
}

// make_attrgetter: "a.b.0" looks up a, then b, then item 0, each with getitem semantics.
struct AttrGetter {
  std::vector<Value> parts;
  const Value* default_value = nullptr;
  bool lower = false;
  AttrGetter(const Value* attribute, const Value* def, bool ignore_case_)
      : default_value(def), lower(ignore_case_) {
    if (!attribute || attribute->is_none()) return;
    if (attribute->is_string()) {
      const std::string& s = attribute->str();
      size_t start = 0;
      while (true) {
        size_t dot = s.find('.', start);
        std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!part.empty() && py_isdigit(part) && is_ascii(part) && part.size() < 18)
          parts.push_back(Value::integer(std::strtoll(part.c_str(), nullptr, 10)));
        else
          parts.push_back(Value::string(part));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
    } else {
      parts.push_back(*attribute);
    }
  }
  Value operator()(Interpreter& in, Value item) const {
    for (auto& p : parts) {
      item = in.getitem(item, p);
      if (default_value && !default_value->is_none() && item.is_undefined()) item = *default_value;
    }
    return lower ? ignore_case(item) : item;
  }
};

Value generator(std::vector<Value> items) {
  return Value::list(std::move(items), Seq::generator);
}

int64_t as_index(const Value& v, const char* what) {
  if (!v.is_integral()) fail(std::string(what) + " must be an integer, not " + v.type_name());
  return v.as_int();
}

// Python's sorted(..., key=..., reverse=...): stable, raising TypeError for incomparable keys.
std::vector<Value> sorted_by(std::vector<Value> items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> idx(items.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    return reverse ? py_order(keys[b], keys[a]) == -1 : py_order(keys[a], keys[b]) == -1;
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : idx) out.push_back(items[i]);
  return out;
}

// ---- filters ----------------------------------------------------------------------------------------------

Value f_abs(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("abs", a, {});
  if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) fail("integer overflow (tailor's integers are 64-bit)");
    return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_undefined()) raise_undefined(v);
  fail(std::string("bad operand type for abs(): '") + v.type_name() + "'");
}

Value f_attr(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("attr", a, {"name"});
  const Value& name = b.required(0);
  if (!name.is_string()) fail("attribute name must be a string");
  if (v.is_dict() && !has_method(v, name.str()))
    return Value::undefined("'dict object' has no attribute '" + name.str() + "'");
  return in.getattr(v, name.str());
}

Value f_batch(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("batch", a, {"linecount", "fill_with"});
  int64_t n = as_index(b.required(0), "linecount");
  if (n <= 0) fail("batch size must be positive");
  std::vector<Value> out, cur;
  for (auto& item : py_iterate(v)) {
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
    cur.push_back(item);
  }
  if (!cur.empty()) {
    if (b.has(1) && !b.get(1).is_none())
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(b.get(1));
    out.push_back(Value::list(std::move(cur)));
  }
  return generator(std::move(out));
}

Value f_capitalize(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("capitalize", a, {});
  Value s = soft_str(v);
  return Value::string(py_capitalize(s.str()), s.is_markup());
}

Value f_center(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("center", a, {"width"});
  int64_t width = as_index(b.get_or(0, Value::integer(80)), "width");
  in.check_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
  return Value::string(py_center(soft_str(v).str(), width, " "));
}

Value f_length(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("length", a, {});
  return Value::integer(py_len(v));
}

Value f_default(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("default", a, {"default_value", "boolean"});
  if (v.is_undefined() || (b.get_or(1, Value::boolean(false)).truthy() && !v.truthy()))
    return b.get_or(0, Value::string(""));
  return v;
}

Value f_dictsort(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("dictsort", a, {"case_sensitive", "by", "reverse"});
  bool case_sensitive = b.get_or(0, Value::boolean(false)).truthy();
  Value by = b.get_or(1, Value::string("key"));
  int pos;
  if (by.is_string() && by.str() == "key")
    pos = 0;
  else if (by.is_string() && by.str() == "value")
    pos = 1;
  else
    fail("You can only sort by either \"key\" or \"value\"");
  if (!v.is_dict()) fail(std::string("'") + v.type_name() + "' object has no attribute 'items'");
  std::vector<Value> items, keys;
  for (auto& [k, val] : v.dict().items()) {
    items.push_back(Value::tuple({Value::string(k), val}));
    Value key = pos == 0 ? Value::string(k) : val;
    keys.push_back(case_sensitive ? key : ignore_case(key));
  }
  return Value::list(sorted_by(std::move(items), keys, b.get_or(2, Value::boolean(false)).truthy()));
}

Value f_escape(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("escape", a, {});
  if (v.is_markup()) return v;
  return Value::string(html_escape(py_str(v)), true);
}

Value f_forceescape(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("forceescape", a, {});
  return Value::string(html_escape(py_str(v)), true);
}

Value f_first(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("first", a, {});
  if (v.is_list()) {
    if (!v.items().empty()) return v.items().front();
  } else {
    auto items = py_iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("last", a, {});
  if (v.is_list() && (v.seq() == Seq::generator || v.seq() == Seq::reverse_iterator))
    fail(std::string("'") + v.type_name() + "' object is not reversible");
  auto items = v.is_list() ? v.items() : py_iterate(v);
  if (!items.empty()) return items.back();
  return Value::undefined("No last item, sequence was empty.");
}

// Python float(x) for strings: optional whitespace, sign, digits with underscores, inf/nan.
bool parse_py_float(const std::string& text, double* out) {
  std::string s = py_strip(text, nullptr, 0);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1])))
        return false;
      continue;
    }
    clean += s[i];
  }
  if (clean.empty()) return false;
  std::string lower = py_lower(clean);
  std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double x = body == "nan" ? NAN : INFINITY;
    *out = lower[0] == '-' ? -x : x;
    return true;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos) return false;
  char* end = nullptr;
  *out = std::strtod(clean.c_str(), &end);
  return end && *end == 0;
}

// Python int(text, base).
bool parse_py_int(const std::string& text, int64_t base, int64_t* out) {
  std::string s = py_strip(text, nullptr, 0);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  auto prefix_base = [&](char c) -> int64_t {
    c = static_cast<char>(std::tolower(c));
    return c == 'x' ? 16 : (c == 'o' ? 8 : (c == 'b' ? 2 : 0));
  };
  if (i + 1 < s.size() && s[i] == '0' && prefix_base(s[i + 1]) &&
      (base == 0 || base == prefix_base(s[i + 1]))) {
    base = prefix_base(s[i + 1]);
    i += 2;
    if (i < s.size() && s[i] == '_') ++i;
  } else if (base == 0) {
    base = 10;
    // Python rejects "010" with base 0
    if (i + 1 < s.size() && s[i] == '0' && s.find_first_not_of("0_", i) != std::string::npos) return false;
  }
  if (base < 2 || base > 36 || i >= s.size()) return false;
  int64_t v = 0;
  bool any = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && any && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = std::isdigit(static_cast<unsigned char>(c))   ? c - '0'
            : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                          : 99;
    if (d >= base) return false;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
      fail("integer overflow (tailor's integers are 64-bit)");
    any = true;
  }
  if (!any) return false;
  *out = neg ? -v : v;
  return true;
}

Value to_int_or_default(const Value& v, const Value& def, int64_t base) {
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) {
    double d = v.as_double();
    if (std::isnan(d) || std::isinf(d) || std::fabs(d) >= 9.2e18) return def;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    int64_t i;
    if (parse_py_int(v.str(), base, &i)) return Value::integer(i);
    double d;
    if (parse_py_float(v.str(), &d) && !std::isnan(d) && !std::isinf(d) && std::fabs(d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(d));
  }
  return def;
}

Value f_int(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("int", a, {"default", "base"});
  return to_int_or_default(v, b.get_or(0, Value::integer(0)),
                           as_index(b.get_or(1, Value::integer(10)), "base"));
}

Value f_float(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("float", a, {"default"});
  if (v.is_number()) return Value::floating(v.as_double());
  double d;
  if (v.is_string() && parse_py_float(v.str(), &d)) return Value::floating(d);
  return b.get_or(0, Value::floating(0.0));
}

Value f_format(Interpreter& in, const Value& v, Args& a) {
  if (!a.pos.empty() && !a.kw.empty()) fail("can't handle positional and keyword arguments at the same time");
  Value args;
  if (!a.kw.empty()) {
    Dict d;
    for (auto& [k, val] : a.kw) d.set(k, val);
    args = make_dict(std::move(d));
  } else {
    args = Value::tuple(a.pos);
  }
  return Value::string(percent_format(in, soft_str(v).str(), args));
}

Value f_indent(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("indent", a, {"width", "first", "blank"});
  Value width = b.get_or(0, Value::integer(4));
  std::string ind;
  if (width.is_string()) {
    ind = width.str();
  } else {
    int64_t w = as_index(width, "width");
    in.check_size(static_cast<size_t>(std::max<int64_t>(w, 0)));
    ind = std::string(static_cast<size_t>(std::max<int64_t>(w, 0)), ' ');
  }
  bool first = b.get_or(1, Value::boolean(false)).truthy(),
       blank = b.get_or(2, Value::boolean(false)).truthy();
  Value sv = v.is_string() ? v : Value::string(py_str(v));
  std::vector<std::string> lines = py_splitlines(sv.str() + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + ind;
      rv += lines[i];
    }
  } else if (!lines.empty()) {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? lines[i] : ind + lines[i]);
  }
  if (first) rv = ind + rv;
  in.check_size(rv.size());
  return Value::string(std::move(rv), sv.is_markup());
}

Value f_items(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("items", a, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (auto& [k, val] : v.dict().items()) out.push_back(Value::tuple({Value::string(k), val}));
  return generator(std::move(out));
}

Value f_join(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("join", a, {"d", "attribute"});
  std::string sep = py_str(b.get_or(0, Value::string("")));
  AttrGetter get(b.has(1) ? &b.get(1) : nullptr, nullptr, false);
  std::string out;
  bool first = true;
  for (auto& item : py_iterate(v)) {
    if (!first) out += sep;
    first = false;
    append_str(out, get.parts.empty() ? item : get(in, item));
    in.check_size(out.size());
  }
  in.charge(out.size() / 64);
  return Value::string(std::move(out));
}

Value f_list(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("list", a, {});
  return Value::list(py_iterate(v));
}

Value f_lower(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("lower", a, {});
  Value s = soft_str(v);
  return Value::string(py_lower(s.str()), s.is_markup());
}

Value f_upper(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("upper", a, {});
  Value s = soft_str(v);
  return Value::string(py_upper(s.str()), s.is_markup());
}

Value f_map(Interpreter& in, const Value& v, Args& a) {
  if (!v.truthy()) return generator({});
  std::vector<Value> out;
  bool by_attribute = false;
  for (auto& kv : a.kw) by_attribute = by_attribute || kv.first == "attribute";
  if (a.pos.empty() && by_attribute) {
    // map(attribute="x", default=...)
    const Value* attribute = nullptr;
    const Value* def = nullptr;
    for (auto& [k, val] : a.kw) {
      if (k == "attribute")
        attribute = &val;
      else if (k == "default")
        def = &val;
      else
        fail("Unexpected keyword argument '" + k + "'");
    }
    AttrGetter get(attribute, def, false);
    for (auto& item : py_iterate(v)) out.push_back(get(in, item));
    return generator(std::move(out));
  }
  // map("filter", args...)
  if (a.pos.empty()) fail("map requires a filter argument");
  if (!a.pos[0].is_string()) fail("map requires a filter name");
  int id = find_filter(a.pos[0].str());
  if (id < 0) fail("no filter named '" + a.pos[0].str() + "'");
  for (auto& item : py_iterate(v)) {
    Args sub;
    sub.pos.assign(a.pos.begin() + 1, a.pos.end());
    sub.kw = a.kw;
    out.push_back(in.apply_filter(id, item, std::move(sub)));
  }
  return generator(std::move(out));
}

Value min_max(Interpreter& in, const Value& v, Args& a, bool want_max) {
  ArgBinder b(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  auto items = py_iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  AttrGetter get(b.has(1) ? &b.get(1) : nullptr, nullptr, !b.get_or(0, Value::boolean(false)).truthy());
  size_t best = 0;
  Value best_key = get(in, items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = get(in, items[i]);
    if (py_order(key, best_key) == (want_max ? 1 : -1)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}
Value f_max(Interpreter& in, const Value& v, Args& a) {
  return min_max(in, v, a, true);
}
Value f_min(Interpreter& in, const Value& v, Args& a) {
  return min_max(in, v, a, false);
}

// select / reject / selectattr / rejectattr
Value select_reject(Interpreter& in, const Value& v, Args& a, bool keep_if, bool by_attr) {
  if (!v.truthy()) return generator({});
  size_t off = 0;
  std::unique_ptr<AttrGetter> get;
  if (by_attr) {
    if (a.pos.empty()) fail("Missing parameter for attribute name");
    get = std::make_unique<AttrGetter>(&a.pos[0], nullptr, false);
    off = 1;
  }
  int test = -1;
  if (a.pos.size() > off) {
    if (!a.pos[off].is_string()) fail("test name must be a string");
    test = find_test(a.pos[off].str());
    if (test < 0) fail("no test named '" + a.pos[off].str() + "'");
  }
  std::vector<Value> out;
  for (auto& item : py_iterate(v)) {
    Value x = get ? (*get)(in, item) : item;
    bool ok;
    if (test >= 0) {
      Args sub;
      sub.pos.assign(a.pos.begin() + static_cast<long>(off) + 1, a.pos.end());
      sub.kw = a.kw;
      ok = in.apply_test(test, x, std::move(sub));
    } else {
      ok = x.truthy();
    }
    if (ok == keep_if) out.push_back(item);
  }
  return generator(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, Args& a) {
  return select_reject(in, v, a, true, false);
}
Value f_reject(Interpreter& in, const Value& v, Args& a) {
  return select_reject(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, const Value& v, Args& a) {
  return select_reject(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, const Value& v, Args& a) {
  return select_reject(in, v, a, false, true);
}

Value f_replace(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("replace", a, {"old", "new", "count"});
  Value count = b.get_or(2, Value::none());
  int64_t n = count.is_none() ? -1 : as_index(count, "count");
  std::string out = py_replace(py_str(v), py_str(b.required(0)), py_str(b.required(1)), n, in);
  return Value::string(std::move(out));
}

Value f_reverse(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("reverse", a, {});
  if (v.is_string()) {
    std::vector<size_t> off = cp_offsets(v.str());
    std::string out;
    for (size_t i = off.size() - 1; i > 0; --i) out.append(v.str(), off[i - 1], off[i] - off[i - 1]);
    return Value::string(std::move(out), v.is_markup());
  }
  if (v.is_list() && (v.seq() == Seq::generator || v.seq() == Seq::reverse_iterator)) {
    // reversed() fails on iterators, so jinja falls back to list(value).reverse().
    std::vector<Value> items = v.items();
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  std::vector<Value> items = py_iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items), Seq::reverse_iterator);
}

Value f_round(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("round", a, {"precision", "method"});
  int64_t prec = as_index(b.get_or(0, Value::integer(0)), "precision");
  Value method = b.get_or(1, Value::string("common"));
  if (!method.is_string() || (method.str() != "common" && method.str() != "ceil" && method.str() != "floor"))
    fail("method must be common, ceil or floor");
  if (!v.is_number()) fail(std::string("type ") + v.type_name() + " doesn't define __round__ method");
  if (method.str() == "common") {
    if (v.is_integral() && prec >= 0) return Value::integer(v.as_int());
    double d = v.as_double();
    if (std::isnan(d) || std::isinf(d) || prec > 300) return Value::floating(d);
    if (prec < -300) return Value::floating(0.0 * d);
    if (prec < 0) {
      double p = std::pow(10.0, static_cast<double>(-prec));
      double r = std::nearbyint(d / p) * p;
      return v.is_integral() ? Value::integer(static_cast<int64_t>(r)) : Value::floating(r);
    }
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec), d);
    return Value::floating(std::strtod(buf, nullptr));
  }
  double p = std::pow(10.0, static_cast<double>(prec));
  double x = v.as_double() * p;
  x = method.str() == "ceil" ? std::ceil(x) : std::floor(x);
  return Value::floating(x / p);
}

Value f_safe(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("safe", a, {});
  return Value::string(py_str(v), true);
}

Value f_slice(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("slice", a, {"slices", "fill_with"});
  int64_t slices = as_index(b.required(0), "slices");
  if (slices <= 0 || slices > 100000) fail("slice count must be between 1 and 100000");
  std::vector<Value> seq = py_iterate(v), out;
  int64_t length = static_cast<int64_t>(seq.size()), per = length / slices, extra = length % slices,
          offset = 0;
  for (int64_t n = 0; n < slices; ++n) {
    int64_t start = offset + n * per;
    if (n < extra) ++offset;
    int64_t end = offset + (n + 1) * per;
    std::vector<Value> part(seq.begin() + start, seq.begin() + end);
    if (b.has(1) && !b.get(1).is_none() && n >= extra) part.push_back(b.get(1));
    out.push_back(Value::list(std::move(part)));
  }
  return generator(std::move(out));
}

Value f_sort(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool reverse = b.get_or(0, Value::boolean(false)).truthy();
  bool case_sensitive = b.get_or(1, Value::boolean(false)).truthy();
  std::vector<Value> items = py_iterate(v);
  in.charge(items.size() * 4);
  // attribute may list several keys: "age,name".
  std::vector<AttrGetter> getters;
  Value attribute = b.get_or(2, Value::none());
  if (attribute.is_string()) {
    const std::string& s = attribute.str();
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      Value part =
          Value::string(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      getters.emplace_back(&part, nullptr, !case_sensitive);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    getters.emplace_back(&attribute, nullptr, !case_sensitive);
  }
  std::vector<Value> keys;
  for (auto& item : items) {
    std::vector<Value> k;
    for (auto& g : getters) k.push_back(g(in, item));
    keys.push_back(Value::list(std::move(k)));
  }
  return Value::list(sorted_by(std::move(items), keys, reverse));
}

Value f_string(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("string", a, {});
  return soft_str(v);
}

Value f_striptags(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("striptags", a, {});
  std::string s = py_str(v), out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 4, "<!--") == 0) {
      size_t e = s.find("-->", i + 4);
      if (e != std::string::npos) {
        i = e + 3;
        continue;
      }
    }
    if (s[i] == '<') {
      size_t e = s.find('>', i + 1);
      if (e != std::string::npos) {
        i = e + 1;
        continue;
      }
    }
    out += s[i++];
  }
  std::string joined;
  for (auto& w : py_split(out, nullptr, -1, false)) joined += (joined.empty() ? "" : " ") + w;
  static const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (auto& [from, to] : entities) {
    size_t p = 0;
    while ((p = joined.find(from, p)) != std::string::npos) {
      joined.replace(p, std::strlen(from), to);
      p += std::strlen(to);
    }
  }
  return Value::string(joined);
}

Value f_sum(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("sum", a, {"attribute", "start"});
  AttrGetter get(b.has(0) ? &b.get(0) : nullptr, nullptr, false);
  Value total = b.get_or(1, Value::integer(0));
  if (total.is_string()) fail("sum() can't sum strings [use ''.join(seq) instead]");
  for (auto& item : py_iterate(v))
    total = arith(in, Op::add, total, get.parts.empty() ? item : get(in, item));
  return total;
}

Value f_title(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("title", a, {});
  // jinja's title: split on runs of [-\s({[<] and capitalise the first character of every piece.
  std::string s = soft_str(v).str(), out;
  bool word_start = true;
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_next(s, i, &cp, &valid);
    bool sep = valid && (py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<');
    if (!valid)
      out.append(s, i, n);
    else if (sep)
      append_utf8(out, cp);
    else if (word_start)
      append_upper_cp(out, cp);
    else
      append_lower_cp(out, cp);
    word_start = sep;
    i += n;
  }
  return Value::string(std::move(out));
}

Value f_tojson(Interpreter& in, const Value& v, Args& a) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> json.dumps
  ArgBinder b("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opt;
  opt.ensure_ascii = b.get_or(0, Value::boolean(false)).truthy();
  Value indent = b.get_or(1, Value::none());
  if (!indent.is_none()) {
    opt.has_indent = true;
    if (indent.is_string()) {
      opt.indent = indent.str();
    } else if (indent.is_integral()) {
      int64_t n = indent.as_int();
      if (n > 1000) fail("tojson indent is too large");
      opt.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    } else {
      fail(std::string("tojson indent must be an int or a string, not ") + indent.type_name());
    }
    opt.item_sep = ",";
  }
  Value seps = b.get_or(2, Value::none());
  if (!seps.is_none()) {
    if (!seps.is_sequence() || seps.items().size() != 2 || !seps.items()[0].is_string() ||
        !seps.items()[1].is_string())
      fail("tojson separators must be a pair of strings");
    opt.item_sep = seps.items()[0].str();
    opt.key_sep = seps.items()[1].str();
  }
  opt.sort_keys = b.get_or(3, Value::boolean(false)).truthy();
  std::string out = json_dumps(v, opt);
  in.check_size(out.size());
  in.charge(out.size() / 64);
  return Value::string(std::move(out));
}

Value f_trim(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("trim", a, {"chars"});
  Value s = soft_str(v);
  Value chars = b.get_or(0, Value::none());
  if (!chars.is_none() && !chars.is_string())
    fail(std::string("strip arg must be None or str, not ") + chars.type_name());
  return Value::string(py_strip(s.str(), chars.is_none() ? nullptr : &chars.str(), 0), s.is_markup());
}

Value f_truncate(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("truncate", a, {"length", "killwords", "end", "leeway"});
  int64_t length = as_index(b.get_or(0, Value::integer(255)), "length");
  bool killwords = b.get_or(1, Value::boolean(false)).truthy();
  std::string end = py_str(b.get_or(2, Value::string("...")));
  Value lw = b.get_or(3, Value::none());
  int64_t leeway = lw.is_none() ? 5 : as_index(lw, "leeway");
  int64_t end_len = static_cast<int64_t>(cp_count(end));
  if (length < end_len)
    fail("expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) fail("expected leeway >= 0");
  std::string s = py_str(v);
  std::vector<size_t> off = cp_offsets(s);
  int64_t n = static_cast<int64_t>(off.size() - 1);
  if (n <= length + leeway) return v.is_string() ? v : Value::string(s);
  std::string head = s.substr(0, off[static_cast<size_t>(std::min(n, length - end_len))]);
  if (killwords) return Value::string(head + end);
  size_t sp = head.rfind(' ');
  if (sp != std::string::npos) head = head.substr(0, sp);
  return Value::string(head + end);
}

Value f_unique(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("unique", a, {"case_sensitive", "attribute"});
  AttrGetter get(b.has(1) ? &b.get(1) : nullptr, nullptr, !b.get_or(0, Value::boolean(false)).truthy());
  std::vector<Value> out, seen;
  for (auto& item : py_iterate(v)) {
    Value key = get(in, item);
    if (key.is_plain_list() || key.is_dict()) fail(std::string("unhashable type: '") + key.type_name() + "'");
    bool dup = false;
    for (auto& s : seen)
      if (py_equal(s, key)) {
        dup = true;
        break;
      }
    in.charge(seen.size() / 8);
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return generator(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("wordcount", a, {});
  std::string s = py_str(v);
  int64_t words = 0;
  bool in_word = false;
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    i += utf8_next(s, i, &cp, &valid);
    bool w = valid && (cp == '_' || py_isalpha_cp(cp) || py_isnumeric_cp(cp));
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value::integer(words);
}

struct FilterDef {
  const char* name;
  Value (*fn)(Interpreter&, const Value&, Args&);
};

const FilterDef kFilters[] = {
    {"abs", f_abs},           {"attr", f_attr},
    {"batch", f_batch},       {"capitalize", f_capitalize},
    {"center", f_center},     {"count", f_length},
    {"d", f_default},         {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape},     {"first", f_first},
    {"float", f_float},       {"forceescape", f_forceescape},
    {"format", f_format},     {"indent", f_indent},
    {"int", f_int},           {"items", f_items},
    {"join", f_join},         {"last", f_last},
    {"length", f_length},     {"list", f_list},
    {"lower", f_lower},       {"map", f_map},
    {"max", f_max},           {"min", f_min},
    {"reject", f_reject},     {"rejectattr", f_rejectattr},
    {"replace", f_replace},   {"reverse", f_reverse},
    {"round", f_round},       {"safe", f_safe},
    {"select", f_select},     {"selectattr", f_selectattr},
    {"slice", f_slice},       {"sort", f_sort},
    {"string", f_string},     {"striptags", f_striptags},
    {"sum", f_sum},           {"title", f_title},
    {"tojson", f_tojson},     {"trim", f_trim},
    {"truncate", f_truncate}, {"unique", f_unique},
    {"upper", f_upper},       {"wordcount", f_wordcount},
};

// ---- tests ------------------------------------------------------------------------------------------------

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
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
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

int find_filter(std::string_view name) {
  for (size_t i = 0; i < sizeof kFilters / sizeof kFilters[0]; ++i)
    if (name == kFilters[i].name) return static_cast<int>(i);
  return -1;
}

int find_test(std::string_view name) {
  for (size_t i = 0; i < sizeof kTests / sizeof kTests[0]; ++i)
    if (name == kTests[i].name) return static_cast<int>(i);
  return -1;
}

bool jinja_has_filter(std::string_view name) {
  static const char* const others[] = {"filesizeformat", "groupby", "pprint",   "random",
                                       "urlencode",      "urlize",  "wordwrap", "xmlattr"};
  for (auto* n : others)
    if (name == n) return true;
  return false;
}

bool jinja_has_test(std::string_view) {
  return false;
}

const char* filter_name(int id) {
  return kFilters[id].name;
}
const char* test_name(int id) {
  return kTests[id].name;
}

Value run_filter(Interpreter& in, int id, const Value& v, Args& args) {
  return kFilters[id].fn(in, v, args);
}
bool run_test(Interpreter& in, int id, const Value& v, Args& args) {
  return kTests[id].fn(in, v, args);
}

}  // namespace tailor::chat_template
