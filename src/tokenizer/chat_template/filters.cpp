// jinja2's builtin filters (jinja2/filters.py), with transformers' tojson.
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

// sorted()'s reverse= must be an int (bool included), as Python checks.
bool reverse_flag(const Value& v) {
  if (v.is_integral()) return v.as_int() != 0;
  fail(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer");
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

Value f_batch(Interpreter& in, const Value& v, Args& a) {
  ArgBinder b("batch", a, {"linecount", "fill_with"});
  int64_t n = as_index(b.required(0), "linecount");
  std::vector<Value> out, cur;
  for (auto& item : py_iterate(v)) {
    if (static_cast<int64_t>(cur.size()) == n) {  // as jinja2 checks it: batch(0) starts with an empty batch
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
    cur.push_back(item);
  }
  if (!cur.empty()) {
    if (b.has(1) && !b.get(1).is_none() && n > static_cast<int64_t>(cur.size())) {
      if (n > 10'000'000) fail("batch size is too large");
      in.charge(static_cast<uint64_t>(n));
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(b.get(1));
    }
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
  return Value::list(sorted_by(std::move(items), keys, reverse_flag(b.get_or(2, Value::boolean(false)))));
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
  auto items = py_iterate(v);
  if (!items.empty()) return items.front();
  return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("last", a, {});
  if (v.is_list() && (v.seq() == Seq::generator || v.seq() == Seq::reverse_iterator))
    fail(std::string("'") + v.type_name() + "' object is not reversible");
  auto items = py_iterate(v);
  if (!items.empty()) return items.back();
  return Value::undefined("No last item, sequence was empty.");
}

// jinja2's int filter: int(value, base) for strings, int(value) otherwise; on failure int(float(value)); on
// failure the default. A non-integer base makes int() raise, which lands on the fallbacks too.
Value to_int_or_default(const Value& v, const Value& def, const Value& base_value) {
  // int(float): NaN is a ValueError (-> default); infinities and values past 64 bits raise.
  auto from_double = [&](double d) {
    if (std::isnan(d)) return def;
    if (std::isinf(d)) fail("cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18) fail("integer overflow (tailor's integers are 64-bit)");
    return Value::integer(static_cast<int64_t>(d));
  };
  if (v.is_undefined())
    raise_undefined(v);  // int(Undefined) raises UndefinedError, which jinja2 lets through
  int64_t base = base_value.is_integral() ? base_value.as_int() : -1;
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) return from_double(v.as_double());
  if (v.is_string()) {
    int64_t i;
    if (base >= 0 && parse_py_int(v.str(), base, &i)) return Value::integer(i);
    double d;
    if (parse_py_float(v.str(), &d)) return from_double(d);
  }
  return def;
}

Value f_int(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("int", a, {"default", "base"});
  return to_int_or_default(v, b.get_or(0, Value::integer(0)), b.get_or(1, Value::integer(10)));
}

Value f_float(Interpreter&, const Value& v, Args& a) {
  ArgBinder b("float", a, {"default"});
  if (v.is_undefined()) raise_undefined(v);
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
  // jinja2 appends "\n" to the value itself: anything but a string fails.
  if (v.is_undefined()) raise_undefined(v);
  if (!v.is_string())
    fail(std::string("unsupported operand type(s) for +=: '") + v.type_name() + "' and 'str'");
  const Value& sv = v;
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
    std::vector<Value> items = py_iterate(v);
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
  bool reverse = reverse_flag(b.get_or(0, Value::boolean(false)));
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
  Value end_v = b.get_or(2, Value::string("..."));
  Value lw = b.get_or(3, Value::none());
  int64_t leeway = lw.is_none() ? 5 : as_index(lw, "leeway");
  int64_t end_len = py_len(end_v);
  if (length < end_len)
    fail("expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) fail("expected leeway >= 0");
  // jinja2 does not convert the value: len() of a list works and returns the list when short enough.
  if (py_len(v) <= length + leeway) return v;
  if (!v.is_string() || !end_v.is_string())
    fail(std::string("truncate needs a string, got ") + v.type_name());
  const std::string& s = v.str();
  const std::string& end = end_v.str();
  std::vector<size_t> off = cp_offsets(s);
  int64_t n = static_cast<int64_t>(off.size() - 1);
  std::string head = s.substr(0, off[static_cast<size_t>(std::clamp<int64_t>(length - end_len, 0, n))]);
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
    require_hashable(key);
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
  bool generator = false;  // returns a Python generator: errors surface only when it is consumed
};

const FilterDef kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch, true},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items, true},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map, true},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject, true},
    {"rejectattr", f_rejectattr, true},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select, true},
    {"selectattr", f_selectattr, true},
    {"slice", f_slice, true},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", f_striptags},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique, true},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

}  // namespace

int find_filter(std::string_view name) {
  for (size_t i = 0; i < sizeof kFilters / sizeof kFilters[0]; ++i)
    if (name == kFilters[i].name) return static_cast<int>(i);
  return -1;
}

bool jinja_has_filter(std::string_view name) {
  static const char* const others[] = {"filesizeformat", "groupby", "pprint",   "random",
                                       "urlencode",      "urlize",  "wordwrap", "xmlattr"};
  for (auto* n : others)
    if (name == n) return true;
  return false;
}

const char* filter_name(int id) {
  return kFilters[id].name;
}
Value run_filter(Interpreter& in, int id, const Value& v, Args& args) {
  if (!kFilters[id].generator) return kFilters[id].fn(in, v, args);
  try {
    return kFilters[id].fn(in, v, args);
  } catch (const TemplateError& e) {
    if (e.raised || e.eager) throw;
    return Value::failed_generator(e.message);
  }
}
}  // namespace tailor::chat_template
