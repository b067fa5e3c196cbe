// Methods of str / dict / list / loop objects, and the global functions of transformers' template environment
// (jinja2's range / dict / namespace, plus raise_exception and strftime_now).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

// ---- shared str helpers -----------------------------------------------------------------------------------

namespace {

struct Cps {
  std::vector<uint32_t> cp;
  std::vector<size_t> off;  // byte offset of each code point, plus the end
  explicit Cps(std::string_view s) {
    off.reserve(s.size() + 1);
    for (size_t i = 0; i < s.size();) {
      uint32_t c;
      bool valid;
      size_t n = utf8_next(s, i, &c, &valid);
      cp.push_back(valid ? c : 0xDC00 + c);  // invalid bytes never match whitespace or real characters
      off.push_back(i);
      i += n;
    }
    off.push_back(s.size());
  }
};

bool in_set(const std::vector<uint32_t>& set, uint32_t c) {
  return std::find(set.begin(), set.end(), c) != set.end();
}

}  // namespace

std::string py_strip(std::string_view s, const std::string* chars, int which) {
  Cps c(s);
  std::vector<uint32_t> set;
  if (chars) set = Cps(*chars).cp;
  auto strip_it = [&](uint32_t x) { return chars ? in_set(set, x) : py_isspace(x); };
  size_t b = 0, e = c.cp.size();
  if (which != 2)
    while (b < e && strip_it(c.cp[b])) ++b;
  if (which != 1)
    while (e > b && strip_it(c.cp[e - 1])) --e;
  return std::string(s.substr(c.off[b], c.off[e] - c.off[b]));
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> out;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) fail("empty separator");
    if (!from_right) {
      size_t start = 0;
      while (maxsplit-- > 0) {
        size_t p = s.find(*sep, start);
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(start, p - start));
        start = p + sep->size();
      }
      out.emplace_back(s.substr(start));
    } else {
      size_t end = s.size();
      while (maxsplit-- > 0 && end >= sep->size()) {
        size_t p = s.rfind(*sep, end - sep->size());
        if (p == std::string_view::npos) break;
        out.emplace_back(s.substr(p + sep->size(), end - p - sep->size()));
        end = p;
      }
      out.emplace_back(s.substr(0, end));
      std::reverse(out.begin(), out.end());
    }
    return out;
  }
  Cps c(s);
  size_t n = c.cp.size();
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && py_isspace(c.cp[i])) ++i;
      if (i >= n) break;
      if (maxsplit-- <= 0) {
        out.emplace_back(s.substr(c.off[i]));
        break;
      }
      size_t j = i;
      while (j < n && !py_isspace(c.cp[j])) ++j;
      out.emplace_back(s.substr(c.off[i], c.off[j] - c.off[i]));
      i = j;
    }
  } else {
    size_t i = n;
    while (true) {
      while (i > 0 && py_isspace(c.cp[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit-- <= 0) {
        out.emplace_back(s.substr(0, c.off[i]));
        break;
      }
      size_t j = i;
      while (j > 0 && !py_isspace(c.cp[j - 1])) --j;
      out.emplace_back(s.substr(c.off[j], c.off[i] - c.off[j]));
      i = j;
    }
    std::reverse(out.begin(), out.end());
  }
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  Cps c(s);
  size_t start = 0, n = c.cp.size();
  for (size_t i = 0; i < n; ++i) {
    uint32_t x = c.cp[i];
    bool brk = x == '\n' || x == '\r' || x == 0x0B || x == 0x0C || x == 0x1C || x == 0x1D || x == 0x1E ||
               x == 0x85 || x == 0x2028 || x == 0x2029;
    if (!brk) continue;
    size_t end = i + 1;
    if (x == '\r' && i + 1 < n && c.cp[i + 1] == '\n') end = i + 2;
    size_t line_end = keepends ? end : i;
    out.emplace_back(s.substr(c.off[start], c.off[line_end] - c.off[start]));
    start = end;
    i = end - 1;
  }
  if (start < n) out.emplace_back(s.substr(c.off[start]));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count,
                       Interpreter& in) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {
    std::vector<size_t> off = cp_offsets(s);
    for (size_t i = 0; i + 1 < off.size() + 1; ++i) {
      if (count > 0) {
        out += repl;
        --count;
      }
      if (i + 1 < off.size()) out.append(s, off[i], off[i + 1] - off[i]);
      in.check_size(out.size());
    }
    return out;
  }
  size_t start = 0;
  while (count > 0) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += repl;
    start = p + old.size();
    --count;
    in.check_size(out.size());
  }
  out.append(s, start, std::string::npos);
  in.charge(out.size() / 64);
  return out;
}

std::string py_center(std::string_view s, int64_t width, std::string_view fill) {
  int64_t len = static_cast<int64_t>(cp_count(s));
  if (width <= len) return std::string(s);
  int64_t marg = width - len;
  int64_t left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

// ---- methods ----------------------------------------------------------------------------------------------

namespace {

const char* const kStrMethods[] = {
    "capitalize", "casefold",     "center",       "count",   "encode",     "endswith",    "expandtabs",
    "find",       "format",       "format_map",   "index",   "isalnum",    "isalpha",     "isascii",
    "isdecimal",  "isdigit",      "isidentifier", "islower", "isnumeric",  "isprintable", "isspace",
    "istitle",    "isupper",      "join",         "ljust",   "lower",      "lstrip",      "maketrans",
    "partition",  "removeprefix", "removesuffix", "replace", "rfind",      "rindex",      "rjust",
    "rpartition", "rsplit",       "rstrip",       "split",   "splitlines", "startswith",  "strip",
    "swapcase",   "title",        "translate",    "upper",   "zfill"};
const char* const kDictMethods[] = {"copy", "fromkeys", "get", "items", "keys", "values"};
const char* const kListMethods[] = {"clear", "copy", "count", "index", "pop"};

template <size_t N>
bool listed(const char* const (&names)[N], std::string_view name) {
  for (auto* n : names)
    if (name == n) return true;
  return false;
}

const std::string& str_arg(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + " must be str, not " + v.type_name());
  return v.str();
}

// Optional start/end arguments of find/count/startswith: the byte range of s they select.
std::string_view sub_range(const std::string& s, const ArgBinder& b, size_t start_i, size_t* cp_base) {
  std::vector<size_t> off = cp_offsets(s);
  int64_t n = static_cast<int64_t>(off.size() - 1);
  auto clamp = [&](size_t i, int64_t def) {
    if (!b.has(i) || b.get(i).is_none()) return def;
    if (!b.get(i).is_integral()) fail("slice indices must be integers or None");
    int64_t x = b.get(i).as_int();
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  int64_t st = clamp(start_i, 0), en = clamp(start_i + 1, n);
  if (en < st) en = st;
  *cp_base = static_cast<size_t>(st);
  return std::string_view(s).substr(off[static_cast<size_t>(st)],
                                    off[static_cast<size_t>(en)] - off[static_cast<size_t>(st)]);
}

Value str_list(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

Value call_str_method(Interpreter& in, const Value& self, std::string_view m, Args& a) {
  const std::string& s = self.str();
  std::string name(m);
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    ArgBinder b(name.c_str(), a, {"chars"});
    Value chars = b.get_or(0, Value::none());
    if (!chars.is_none() && !chars.is_string())
      fail(std::string("strip arg must be None or str, not ") + chars.type_name());
    return Value::string(
        py_strip(s, chars.is_none() ? nullptr : &chars.str(), m == "strip" ? 0 : (m == "lstrip" ? 1 : 2)));
  }
  if (m == "split" || m == "rsplit") {
    ArgBinder b(name.c_str(), a, {"sep", "maxsplit"});
    Value sep = b.get_or(0, Value::none());
    Value maxsplit = b.get_or(1, Value::integer(-1));
    if (!maxsplit.is_integral()) fail("maxsplit must be an integer");
    auto parts =
        py_split(s, sep.is_none() ? nullptr : &str_arg(sep, "sep"), maxsplit.as_int(), m == "rsplit");
    in.charge(parts.size());
    return str_list(std::move(parts));
  }
  if (m == "splitlines") {
    ArgBinder b(name.c_str(), a, {"keepends"});
    return str_list(py_splitlines(s, b.get_or(0, Value::boolean(false)).truthy()));
  }
  if (m == "startswith" || m == "endswith") {
    ArgBinder b(name.c_str(), a, {"prefix", "start", "end"});
    const Value& p = b.required(0);
    size_t base;
    std::string_view hay = sub_range(s, b, 1, &base);
    auto test = [&](const Value& x) {
      const std::string& needle =
          str_arg(x, m == "startswith" ? "startswith first arg" : "endswith first arg");
      if (needle.size() > hay.size()) return false;
      return m == "startswith" ? hay.substr(0, needle.size()) == needle
                               : hay.substr(hay.size() - needle.size()) == needle;
    };
    if (p.is_tuple()) {
      for (auto& x : p.items())
        if (test(x)) return Value::boolean(true);
      return Value::boolean(false);
    }
    return Value::boolean(test(p));
  }
  if (m == "upper" || m == "lower" || m == "title" || m == "capitalize" || m == "swapcase" ||
      m == "casefold") {
    ArgBinder b(name.c_str(), a, {});
    if (m == "upper") return Value::string(py_upper(s));
    if (m == "lower" || m == "casefold") return Value::string(py_lower(s));
    if (m == "title") return Value::string(py_title(s));
    if (m == "capitalize") return Value::string(py_capitalize(s));
    return Value::string(py_swapcase(s));
  }
  if (m == "replace") {
    ArgBinder b(name.c_str(), a, {"old", "new", "count"});
    Value count = b.get_or(2, Value::integer(-1));
    if (!count.is_integral()) fail("replace count must be an integer");
    return Value::string(py_replace(s, str_arg(b.required(0), "replace arg 1"),
                                    str_arg(b.required(1), "replace arg 2"), count.as_int(), in));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
    ArgBinder b(name.c_str(), a, {"sub", "start", "end"});
    const std::string& sub = str_arg(b.required(0), "must be str");
    size_t base;
    std::string_view hay = sub_range(s, b, 1, &base);
    if (m == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(cp_count(hay) + 1));
      int64_t n = 0;
      for (size_t p = hay.find(sub); p != std::string_view::npos; p = hay.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t p = (m == "find" || m == "index") ? hay.find(sub) : hay.rfind(sub);
    if (p == std::string_view::npos) {
      if (m == "index" || m == "rindex") fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(base + cp_count(hay.substr(0, p))));
  }
  if (m == "join") {
    ArgBinder b(name.c_str(), a, {"iterable"});
    std::string out;
    size_t i = 0;
    for (auto& item : py_iterate(b.required(0))) {
      if (!item.is_string())
        fail("sequence item " + std::to_string(i) + ": expected str instance, " + item.type_name() +
             " found");
      if (i++) out += s;
      out += item.str();
      in.check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (m == "format") return Value::string(str_format(in, s, a));
  if (m == "center" || m == "ljust" || m == "rjust") {
    ArgBinder b(name.c_str(), a, {"width", "fillchar"});
    const Value& w = b.required(0);
    if (!w.is_integral()) fail("width must be an integer");
    std::string fill = b.has(1) ? str_arg(b.get(1), "fillchar") : " ";
    if (cp_count(fill) != 1) fail("The fill character must be exactly one character long");
    int64_t width = w.as_int();
    in.check_size(static_cast<size_t>(std::max<int64_t>(width, 0)) * fill.size());
    if (m == "center") return Value::string(py_center(s, width, fill));
    int64_t padn = width - static_cast<int64_t>(cp_count(s));
    std::string padding;
    for (int64_t i = 0; i < padn; ++i) padding += fill;
    return Value::string(m == "ljust" ? s + padding : padding + s);
  }
  if (m == "zfill") {
    ArgBinder b(name.c_str(), a, {"width"});
    const Value& w = b.required(0);
    if (!w.is_integral()) fail("width must be an integer");
    int64_t padn = w.as_int() - static_cast<int64_t>(cp_count(s));
    in.check_size(static_cast<size_t>(std::max<int64_t>(padn, 0)));
    if (padn <= 0) return self;
    size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(padn), '0') + s.substr(sign));
  }
  if (m == "partition" || m == "rpartition") {
    ArgBinder b(name.c_str(), a, {"sep"});
    const std::string& sep = str_arg(b.required(0), "sep");
    if (sep.empty()) fail("empty separator");
    size_t p = m == "partition" ? s.find(sep) : s.rfind(sep);
    if (p == std::string::npos) {
      if (m == "partition") return Value::tuple({Value::string(s), Value::string(""), Value::string("")});
      return Value::tuple({Value::string(""), Value::string(""), Value::string(s)});
    }
    return Value::tuple(
        {Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))});
  }
  if (m == "removeprefix" || m == "removesuffix") {
    ArgBinder b(name.c_str(), a, {"affix"});
    const std::string& x = str_arg(b.required(0), "affix");
    if (m == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
    if (m == "removesuffix" && !x.empty() && s.size() >= x.size() &&
        s.compare(s.size() - x.size(), x.size(), x) == 0)
      return Value::string(s.substr(0, s.size() - x.size()));
    return Value::string(s);
  }
  if (m.substr(0, 2) == "is") {
    ArgBinder b(name.c_str(), a, {});
    if (m == "isalnum") return Value::boolean(py_isalnum(s));
    if (m == "isalpha") return Value::boolean(py_isalpha(s));
    if (m == "isdigit" || m == "isdecimal" || m == "isnumeric") return Value::boolean(py_isdigit(s));
    if (m == "isspace") return Value::boolean(py_isspace(std::string_view(s)));
    if (m == "islower") return Value::boolean(py_islower(s));
    if (m == "isupper") return Value::boolean(py_isupper(s));
    if (m == "isascii") return Value::boolean(is_ascii(s));
    if (m == "istitle")
      return Value::boolean(!s.empty() && py_title(s) == s &&
                            py_isupper(s.substr(0, 1)) == py_isupper(s.substr(0, 1)));
  }
  fail("str." + name + "() is not supported in chat templates");
}

Value call_dict_method(Interpreter& in, const Value& self, std::string_view m, Args& a) {
  std::string name(m);
  if (m == "get") {
    ArgBinder b("get", a, {"key", "default"});
    const Value& key = b.required(0);
    require_hashable(key);
    if (key.is_string())
      if (const Value* v = self.dict().find(key.str())) return *v;
    return b.get_or(1, Value::none());
  }
  if (m == "items" || m == "keys" || m == "values") {
    ArgBinder b(name.c_str(), a, {});
    std::vector<Value> out;
    out.reserve(self.dict().size());
    in.charge(self.dict().size());
    for (auto& [k, v] : self.dict().items()) {
      if (m == "items")
        out.push_back(Value::tuple({Value::string(k), v}));
      else if (m == "keys")
        out.push_back(Value::string(k));
      else
        out.push_back(v);
    }
    return Value::list(std::move(out),
                       m == "items" ? Seq::dict_items : (m == "keys" ? Seq::dict_keys : Seq::dict_values));
  }
  if (m == "copy") {
    ArgBinder b("copy", a, {});
    return self;
  }
  fail("dict." + name + "() is not supported in chat templates");
}

Value call_list_method(Interpreter&, const Value& self, std::string_view m, Args& a) {
  std::string name(m);
  if (m == "count") {
    ArgBinder b("count", a, {"value"});
    int64_t n = 0;
    for (auto& x : self.items()) n += py_equal(x, b.required(0)) ? 1 : 0;
    return Value::integer(n);
  }
  if (m == "index") {
    ArgBinder b("index", a, {"value"});
    const auto& items = self.items();
    for (size_t i = 0; i < items.size(); ++i)
      if (py_equal(items[i], b.required(0))) return Value::integer(static_cast<int64_t>(i));
    fail(py_repr(b.required(0)) + " is not in list");
  }
  if (m == "copy") {
    ArgBinder b("copy", a, {});
    return Value::list(self.list_ptr(), Seq::list);
  }
  fail(std::string(self.type_name()) + "." + name +
       "() is not supported in chat templates (it would modify the list)");
}

Value call_loop_method(const Value& self, std::string_view m, Args& a) {
  LoopState* l = self.loop();
  if (m == "cycle") {
    if (a.pos.empty()) fail("no items for cycling given");
    return a.pos[l->index0 % a.pos.size()];
  }
  // changed(*values): true when the values differ from the previous call's.
  Value now = Value::tuple(a.pos);
  if (l->has_changed_value && py_equal(l->changed_value, now)) return Value::boolean(false);
  l->changed_value = now;
  l->has_changed_value = true;
  return Value::boolean(true);
}

}  // namespace

bool has_method(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Kind::string:
      return listed(kStrMethods, name);
    case Kind::dict:
      return listed(kDictMethods, name);
    case Kind::list:
      if (obj.is_plain_list()) return listed(kListMethods, name);
      return obj.is_indexable() && (name == "count" || name == "index");  // tuple, range
    case Kind::loop:
      return name == "cycle" || name == "changed";
    default:
      return false;
  }
}

bool is_unsafe_method(const Value& obj, std::string_view name) {
  static const char* const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
  static const char* const list_unsafe[] = {"append", "reverse", "insert", "sort", "extend", "remove"};
  if (obj.is_dict()) return listed(dict_unsafe, name);
  if (obj.is_plain_list()) return listed(list_unsafe, name);
  return false;
}

Value call_method(Interpreter& in, const Value& obj, std::string_view name, Args& args) {
  switch (obj.kind()) {
    case Kind::string:
      return call_str_method(in, obj, name, args);
    case Kind::dict:
      return call_dict_method(in, obj, name, args);
    case Kind::list:
      return call_list_method(in, obj, name, args);
    case Kind::loop:
      return call_loop_method(obj, name, args);
    default:
      break;
  }
  fail(std::string("'") + obj.type_name() + "' object has no attribute '" + std::string(name) + "'");
}

// ---- globals ----------------------------------------------------------------------------------------------

namespace {

enum GlobalId { g_range, g_dict, g_namespace, g_raise_exception, g_strftime_now };

const std::vector<std::shared_ptr<const Callable>>& global_callables() {
  static const auto* table = [] {
    auto* t = new std::vector<std::shared_ptr<const Callable>>();
    const char* names[] = {"range", "dict", "namespace", "raise_exception", "strftime_now"};
    for (int i = 0; i < 5; ++i) {
      auto c = std::make_shared<Callable>();
      c->type = Callable::Type::builtin;
      c->name = names[i];
      c->id = i;
      t->push_back(std::move(c));
    }
    return t;
  }();
  return *table;
}

std::string strftime_now(Interpreter& in, const std::string& fmt) {
  if (fmt.size() > 4096) fail("strftime_now format is too long");
  std::time_t t = in.now();
  std::tm tm{};
  localtime_r(&t, &tm);
  // Python's datetime.strftime handles %f, %z and %Z itself (a naive datetime has no zone).
  std::string f;
  // C's strftime (which Python calls) stops at a NUL.
  const std::string_view fmt_view(fmt.data(), std::min(fmt.size(), fmt.find('\0')));
  for (size_t i = 0; i < fmt_view.size(); ++i) {
    if (fmt_view[i] == '%' && i + 1 < fmt_view.size()) {
      char c = fmt_view[i + 1];
      if (c == 'f') {
        f += "000000";
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      f += fmt_view[i];
      f += fmt_view[++i];
      continue;
    }
    f += fmt_view[i];
  }
  if (f.empty()) return "";
  std::vector<char> buf(256 + f.size() * 16);
  // A non-empty result distinguishes success; append a marker so an empty expansion is not mistaken for
  // failure.
  std::string probe = f + "\x01";
  size_t n = std::strftime(buf.data(), buf.size(), probe.c_str(), &tm);
  if (n == 0) fail("strftime_now: the formatted date is too long");
  return std::string(buf.data(), n - 1);
}

}  // namespace

void add_globals(Scope* scope) {
  for (auto& c : global_callables()) scope->set(c->name, Value::callable(c));
}

Value call_global(Interpreter& in, int id, Args& a) {
  switch (id) {
    case g_range: {
      if (!a.kw.empty()) fail("range() takes no keyword arguments");
      if (a.pos.empty() || a.pos.size() > 3)
        fail("range expected at most 3 arguments, got " + std::to_string(a.pos.size()));
      for (auto& v : a.pos)
        if (!v.is_integral())
          fail(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer");
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) {
        stop = a.pos[0].as_int();
      } else {
        start = a.pos[0].as_int();
        stop = a.pos[1].as_int();
        if (a.pos.size() == 3) step = a.pos[2].as_int();
      }
      if (step == 0) fail("range() arg 3 must not be zero");
      // jinja2's sandbox refuses ranges longer than MAX_RANGE.
      __int128 span = step > 0
                          ? (static_cast<__int128>(stop) - start + step - 1) / step
                          : (static_cast<__int128>(start) - stop - step - 1) / -static_cast<__int128>(step);
      if (span > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      in.charge(static_cast<uint64_t>(std::max<__int128>(span, 0)));
      return Value::range(start, stop, step);
    }
    case g_dict: {
      Dict d;
      if (a.pos.size() > 1) fail("dict expected at most 1 argument, got " + std::to_string(a.pos.size()));
      if (a.pos.size() == 1) {
        const Value& src = a.pos[0];
        if (src.is_undefined()) raise_undefined(src);  // dict() looks for .keys() on it
        if (src.is_dict()) {
          for (auto& [k, v] : src.dict().items()) d.set(k, v);
        } else {
          for (auto& pair : py_iterate(src)) {
            auto kv = py_iterate(pair);
            if (kv.size() != 2)
              fail("dictionary update sequence element has length " + std::to_string(kv.size()) +
                   "; 2 is required");
            if (!kv[0].is_string()) fail("dict keys must be strings here");
            d.set(kv[0].str(), kv[1]);
          }
        }
      }
      for (auto& [k, v] : a.kw) d.set(k, v);
      return make_dict(std::move(d));
    }
    case g_namespace: {
      Namespace* ns = in.new_namespace();
      if (a.pos.size() > 1) fail("namespace() takes at most 1 positional argument");
      if (a.pos.size() == 1) {
        if (!a.pos[0].is_dict()) fail("namespace() positional argument must be a dict");
        for (auto& [k, v] : a.pos[0].dict().items()) ns->set(k, v);
      }
      for (auto& [k, v] : a.kw) ns->set(k, v);
      return Value::ns(ns);
    }
    case g_raise_exception: {
      ArgBinder b("raise_exception", a, {"message"});
      throw TemplateError{py_str(b.required(0)), TemplateError::npos, true};
    }
    case g_strftime_now: {
      ArgBinder b("strftime_now", a, {"format"});
      const Value& f = b.required(0);
      if (!f.is_string()) fail(std::string("strftime() argument 1 must be str, not ") + f.type_name());
      return Value::string(strftime_now(in, f.str()));
    }
    default:
      break;
  }
  fail("unknown builtin function");
}

}  // namespace tailor::chat_template
