#include "tokenizer/chat_template/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

void fail(std::string message) {
  throw TemplateError{std::move(message)};
}

static std::string cat_depth_error() {
  return "values nest deeper than " + std::to_string(kMaxValueDepth) + " levels";
}

// ---- construction -----------------------------------------------------------------------------------------

Value Value::undefined(std::string hint) {
  Value v;
  v.p_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::integer;
  v.i_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.kind_ = Kind::floating;
  v.f_ = d;
  return v;
}

Value Value::string(std::string s, bool markup) {
  return string(std::make_shared<const std::string>(std::move(s)), markup);
}

Value Value::string(StrPtr s, bool markup) {
  Value v;
  v.kind_ = Kind::string;
  v.sub_ = markup ? 1 : 0;
  v.p_ = std::move(s);
  return v;
}

Value Value::list(std::vector<Value> items, Seq seq) {
  auto l = std::make_shared<List>();
  int depth = 0;
  for (auto& it : items) depth = std::max(depth, it.depth());
  if (depth + 1 > kMaxValueDepth) fail(cat_depth_error());
  l->depth = depth + 1;
  l->items = std::move(items);
  return list(ListPtr(std::move(l)), seq);
}

Value Value::failed_generator(std::string error) {
  auto l = std::make_shared<List>();
  l->deferred_error = std::move(error);
  return list(ListPtr(std::move(l)), Seq::generator);
}

Value Value::range(int64_t start, int64_t stop, int64_t step) {
  auto l = std::make_shared<List>();
  for (__int128 i = start; step > 0 ? i < stop : i > stop; i += step)  // 128-bit: the last step may overflow
    l->items.push_back(Value::integer(static_cast<int64_t>(i)));
  l->range_start = start;
  l->range_stop = stop;
  l->range_step = step;
  return list(ListPtr(std::move(l)), Seq::range);
}

Value Value::list(ListPtr l, Seq seq) {
  Value v;
  v.kind_ = Kind::list;
  v.sub_ = static_cast<uint8_t>(seq);
  v.p_ = std::move(l);
  return v;
}

Value Value::dict(DictPtr d) {
  Value v;
  v.kind_ = Kind::dict;
  v.p_ = std::move(d);
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> c) {
  Value v;
  v.kind_ = Kind::callable;
  v.p_ = std::move(c);
  return v;
}

Value Value::ns(Namespace* n) {
  Value v;
  v.kind_ = Kind::ns;
  v.ns_ = n;
  return v;
}

Value Value::loop(std::shared_ptr<LoopState> l) {
  Value v;
  v.kind_ = Kind::loop;
  v.p_ = std::move(l);
  return v;
}

const std::vector<Value>& Value::items() const {
  return list().items;
}

std::string Value::undefined_hint() const {
  if (p_) return *static_cast<const std::string*>(p_.get());
  return "value is undefined";
}

int Value::depth() const {
  if (kind_ == Kind::list) return list().depth;
  if (kind_ == Kind::dict) return dict().depth();
  return 0;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none:
      return false;
    case Kind::boolean:
      return b_;
    case Kind::integer:
      return i_ != 0;
    case Kind::floating:
      return f_ != 0.0;
    case Kind::string:
      return !str().empty();
    case Kind::list:
      return seq() == Seq::generator || seq() == Seq::reverse_iterator || !items().empty();
    case Kind::dict:
      return dict().size() > 0;
    default:
      return true;
  }
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::undefined:
      return "Undefined";
    case Kind::none:
      return "NoneType";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return sub_ ? "Markup" : "str";
    case Kind::list:
      switch (seq()) {
        case Seq::list:
          return "list";
        case Seq::tuple:
          return "tuple";
        case Seq::generator:
          return "generator";
        case Seq::reverse_iterator:
          return "list_reverseiterator";
        case Seq::dict_items:
          return "dict_items";
        case Seq::dict_keys:
          return "dict_keys";
        case Seq::dict_values:
          return "dict_values";
        case Seq::range:
          return "range";
      }
      return "list";
    case Kind::dict:
      return "dict";
    case Kind::callable:
      return "function";
    case Kind::ns:
      return "Namespace";
    case Kind::loop:
      return "LoopContext";
  }
  return "object";
}

void Dict::set(std::string key, Value v) {
  if (const Value* existing = find(key)) {
    *const_cast<Value*>(existing) = std::move(v);
    return;
  }
  if (v.depth() + 1 > depth_) depth_ = v.depth() + 1;
  items_.emplace_back(std::move(key), std::move(v));
  if (items_.size() == 9) {
    for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  } else if (items_.size() > 9) {
    index_.emplace(items_.back().first, items_.size() - 1);
  }
}

const Value* Dict::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  for (auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

Value make_dict(Dict d) {
  if (d.depth() > kMaxValueDepth) fail(cat_depth_error());
  return Value::dict(std::make_shared<const Dict>(std::move(d)));
}

const Value* Namespace::find(std::string_view key) const {
  for (auto& [k, v] : attrs)
    if (k == key) return &v;
  return nullptr;
}

void Namespace::set(const std::string& key, Value v) {
  for (auto& [k, old] : attrs)
    if (k == key) {
      old = std::move(v);
      return;
    }
  attrs.emplace_back(key, std::move(v));
}

// ---- str() / repr() ---------------------------------------------------------------------------------------

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: positional when -4 <= exponent < 16.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exp10 = std::atoi(sci.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  std::string out = neg ? "-" : "";
  int decpt = exp10 + 1;  // digits = 0.d1d2... * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(decpt) - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out += '.';
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
  out += eb;
  return out;
}

void append_str_repr(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  out += q;
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_next(s, i, &cp, &valid);
    char buf[16];
    if (!valid) {
      // Python strings never hold invalid UTF-8; show the byte as Python shows a lone surrogate escape.
      std::snprintf(buf, sizeof buf, "\\udc%02x", cp);
      out += buf;
    } else if (cp == static_cast<uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (py_isprintable(cp)) {
      out.append(s.substr(i, n));
    } else if (cp < 0x100) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else if (cp < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    }
    i += n;
  }
  out += q;
}

static void check_depth(int depth) {
  if (depth > kMaxValueDepth) fail(cat_depth_error());
}

void append_repr(std::string& out, const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
    case Kind::undefined:
      out += "Undefined";
      return;
    case Kind::string:
      if (v.is_markup()) {
        out += "Markup(";
        append_str_repr(out, v.str());
        out += ')';
      } else {
        append_str_repr(out, v.str());
      }
      return;
    case Kind::list: {
      if (v.seq() == Seq::range) {
        const List& l = v.list();
        out += "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
        if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
        out += ')';
        return;
      }
      if (v.seq() == Seq::generator || v.seq() == Seq::reverse_iterator) {
        out += std::string("<") + v.type_name() + " object>";
        return;
      }
      bool view = v.seq() == Seq::dict_items || v.seq() == Seq::dict_keys || v.seq() == Seq::dict_values;
      if (view) out += std::string(v.type_name()) + "(";
      out += v.is_tuple() ? '(' : '[';
      const auto& items = v.items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr(out, items[i], depth + 1);
      }
      if (v.is_tuple() && items.size() == 1) out += ',';
      out += v.is_tuple() ? ')' : ']';
      if (view) out += ')';
      return;
    }
    case Kind::dict: {
      out += '{';
      bool first = true;
      for (auto& [k, val] : v.dict().items()) {
        if (!first) out += ", ";
        first = false;
        append_str_repr(out, k);
        out += ": ";
        append_repr(out, val, depth + 1);
      }
      out += '}';
      return;
    }
    case Kind::ns: {
      out += "<Namespace {";
      bool first = true;
      for (auto& [k, val] : v.ns()->attrs) {
        if (!first) out += ", ";
        first = false;
        append_str_repr(out, k);
        out += ": ";
        append_repr(out, val, depth + 1);
      }
      out += "}>";
      return;
    }
    default:
      append_str(out, v);
      return;
  }
}

void append_str(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
      return;
    case Kind::none:
      out += "None";
      return;
    case Kind::boolean:
      out += v.as_bool() ? "True" : "False";
      return;
    case Kind::integer:
      out += std::to_string(v.as_int());
      return;
    case Kind::floating:
      out += float_repr(v.as_double());
      return;
    case Kind::string:
      out += v.str();
      return;
    case Kind::list:
    case Kind::dict:
    case Kind::ns:
      append_repr(out, v, 0);
      return;
    case Kind::callable:
      out += callable_repr(*v.callable());
      return;
    case Kind::loop: {
      auto* l = v.loop();
      out += "<LoopContext " + std::to_string(l->index0 + 1) + "/" + std::to_string(l->items->size()) + ">";
      return;
    }
  }
}

std::string py_str(const Value& v) {
  if (v.is_string()) return v.str();
  std::string s;
  append_str(s, v);
  return s;
}

std::string py_repr(const Value& v) {
  std::string s;
  append_repr(s, v);
  return s;
}

// ---- comparison -------------------------------------------------------------------------------------------

bool py_equal(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none:
      return true;
    case Kind::string:
      return a.str() == b.str();
    case Kind::list: {
      if (a.seq() != b.seq()) return false;
      if (a.seq() == Seq::generator || a.seq() == Seq::reverse_iterator) return a.list_ptr() == b.list_ptr();
      const auto &x = a.items(), &y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!py_equal(x[i], y[i], depth + 1)) return false;
      return true;
    }
    case Kind::dict: {
      const Dict &x = a.dict(), &y = b.dict();
      if (x.size() != y.size()) return false;
      for (auto& [k, v] : x.items()) {
        const Value* o = y.find(k);
        if (!o || !py_equal(v, *o, depth + 1)) return false;
      }
      return true;
    }
    case Kind::callable:
      return a.callable() == b.callable();
    case Kind::ns:
      return a.ns() == b.ns();
    case Kind::loop:
      return a.loop() == b.loop();
    default:
      return false;
  }
}

int py_order(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      if (std::isnan(x) || std::isnan(y)) return 2;
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_sequence() && b.is_sequence() && a.is_tuple() == b.is_tuple()) {
    const auto &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!py_equal(x[i], y[i], depth + 1)) return py_order(x[i], y[i], depth + 1);
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  fail(std::string("comparison not supported between instances of '") + a.type_name() + "' and '" +
       b.type_name() + "'");
}

bool py_contains(const Value& hay, const Value& needle) {
  switch (hay.kind()) {
    case Kind::string:
      if (!needle.is_string())
        fail(std::string("'in <string>' requires string as left operand, not ") + needle.type_name());
      return hay.str().find(needle.str()) != std::string::npos;
    case Kind::list:
      if (!hay.list().deferred_error.empty()) fail(hay.list().deferred_error);
      for (auto& x : hay.items())
        if (py_equal(x, needle)) return true;
      return false;
    case Kind::dict:
      require_hashable(needle);
      return needle.is_string() && hay.dict().find(needle.str()) != nullptr;
    case Kind::undefined:
      return false;  // iterates as empty
    default:
      fail(std::string("argument of type '") + hay.type_name() + "' is not iterable");
  }
}

std::vector<Value> py_iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
      return {};
    case Kind::list:
      if (!v.list().deferred_error.empty()) fail(v.list().deferred_error);
      return v.items();
    case Kind::dict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().size());
      for (auto& [k, _] : v.dict().items()) keys.push_back(Value::string(k));
      return keys;
    }
    case Kind::string: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      uint32_t cp;
      for (size_t i = 0; i < s.size();) {
        size_t n = utf8_next(s, i, &cp);
        chars.push_back(Value::string(s.substr(i, n)));  // iterating Markup yields plain str characters
        i += n;
      }
      return chars;
    }
    default:
      fail(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
      return 0;
    case Kind::string:
      return static_cast<int64_t>(cp_count(v.str()));
    case Kind::list:
      if (v.seq() == Seq::generator || v.seq() == Seq::reverse_iterator) break;
      return static_cast<int64_t>(v.items().size());
    case Kind::dict:
      return static_cast<int64_t>(v.dict().size());
    case Kind::loop:
      return static_cast<int64_t>(v.loop()->items->size());
    default:
      break;
  }
  fail(std::string("object of type '") + v.type_name() + "' has no len()");
}

void require_hashable(const Value& v, int depth) {
  check_depth(depth);
  if (v.is_dict()) fail("unhashable type: 'dict'");
  if (v.is_list()) {
    Seq s = v.seq();
    if (s == Seq::tuple) {
      for (auto& x : v.items()) require_hashable(x, depth + 1);
    } else if (s != Seq::generator && s != Seq::reverse_iterator && s != Seq::range) {
      fail(std::string("unhashable type: '") + v.type_name() + "'");
    }
  }
}

void raise_undefined(const Value& v) {
  fail(v.undefined_hint());
}

}  // namespace tailor::chat_template
