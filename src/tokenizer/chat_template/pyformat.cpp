// Python text conversions the templates reach: int()/float() of strings, json.dumps (what transformers'
// tojson filter calls), printf-style `str % args`, and str.format().
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tokenizer/chat_template/builtins.h"
#include "tokenizer/chat_template/unicode.h"

namespace tailor::chat_template {

// ---- argument binding -------------------------------------------------------------------------------------

namespace {
[[noreturn]] void fail_eager(std::string message) {
  throw TemplateError{std::move(message), TemplateError::npos, false, true};
}
}  // namespace

ArgBinder::ArgBinder(const char* what, Args& args, std::initializer_list<const char*> names)
    : what_(what), names_(names), slots_(names.size(), nullptr) {
  if (args.pos.size() > names_.size())
    fail_eager(std::string(what) + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
               std::to_string(args.pos.size()) + " given)");
  for (size_t i = 0; i < args.pos.size(); ++i) slots_[i] = &args.pos[i];
  for (auto& [k, v] : args.kw) {
    size_t idx = 0;
    while (idx < names_.size() && k != names_[idx]) ++idx;
    if (idx == names_.size())
      fail_eager(std::string(what) + "() got an unexpected keyword argument '" + k + "'");
    if (slots_[idx]) fail_eager(std::string(what) + "() got multiple values for argument '" + k + "'");
    slots_[idx] = &v;
  }
}

const Value& ArgBinder::required(size_t i) const {
  if (!slots_[i]) fail_eager(std::string(what_) + "() missing required argument '" + names_[i] + "'");
  return *slots_[i];
}

// ---- int() / float() of strings ------------------------------------------------------------

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
  std::vector<int> digits;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = std::isdigit(static_cast<unsigned char>(c))   ? c - '0'
            : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                          : 99;
    if (d >= base) return false;
    digits.push_back(d);
  }
  if (digits.empty()) return false;
  // Valid text: Python would make a big integer where 64 bits do not suffice.
  int64_t v = 0;
  for (int d : digits)
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
      fail("integer overflow (tailor's integers are 64-bit)");
  *out = neg ? -v : v;
  return true;
}

// ---- json.dumps -------------------------------------------------------------------------------------------

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  uint32_t cp;
  bool valid;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_next(s, i, &cp, &valid);
    char buf[16];
    if (!valid) {
      // Bytes that are not UTF-8 cannot come from Python; keep them visible rather than emitting bad JSON.
      std::snprintf(buf, sizeof buf, "\\udc%02x", cp);
      out += buf;
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\b') {
      out += "\\b";
    } else if (cp == '\f') {
      out += "\\f";
    } else if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out += '"';
}

void json_value(std::string& out, const Value& v, const JsonDumpOptions& opt, int level) {
  if (level > kMaxValueDepth) fail("values nest too deeply to serialise");
  auto newline = [&](int lvl) {
    out += '\n';
    for (int i = 0; i < lvl; ++i) out += opt.indent;
  };
  switch (v.kind()) {
    case Kind::none:
      out += "null";
      return;
    case Kind::boolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case Kind::integer:
      out += std::to_string(v.as_int());
      return;
    case Kind::floating: {
      double d = v.as_double();
      if (std::isnan(d))
        out += "NaN";
      else if (std::isinf(d))
        out += d > 0 ? "Infinity" : "-Infinity";
      else
        out += float_repr(d);
      return;
    }
    case Kind::string:
      json_string(out, v.str(), opt.ensure_ascii);
      return;
    case Kind::list: {
      if (!v.is_sequence()) break;
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += opt.item_sep;
        if (opt.has_indent) newline(level + 1);
        json_value(out, items[i], opt, level + 1);
      }
      if (opt.has_indent) newline(level);
      out += ']';
      return;
    }
    case Kind::dict: {
      const auto& items = v.dict().items();
      if (items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      for (auto& kv : items) order.push_back(&kv);
      if (opt.sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      bool first = true;
      for (auto* kv : order) {
        if (!first) out += opt.item_sep;
        first = false;
        if (opt.has_indent) newline(level + 1);
        json_string(out, kv->first, opt.ensure_ascii);
        out += opt.key_sep;
        json_value(out, kv->second, opt, level + 1);
      }
      if (opt.has_indent) newline(level);
      out += '}';
      return;
    }
    default:
      break;
  }
  fail(std::string("Object of type ") + v.type_name() + " is not JSON serializable");
}

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& opt) {
  std::string out;
  json_value(out, v, opt, 0);
  return out;
}

// ---- printf-style formatting ------------------------------------------------------------------------------

namespace {

std::string pad(std::string s, int width, bool left, char fill = ' ') {
  int len = static_cast<int>(cp_count(s));
  if (width <= len) return s;
  std::string padding(static_cast<size_t>(width - len), fill);
  return left ? s + padding : padding + s;
}

// Formats a number with a C conversion (d, x, o, e, f, g, ...); `prec` < 0 means default.
std::string c_number(char conv, const Value& v, const std::string& flags, int prec) {
  char fmt[32];
  char buf[512];
  std::string f = "%" + flags;
  if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' || conv == 'o') {
    if (!v.is_number())
      fail(std::string("%") + conv + " format: a real number is required, not " + v.type_name());
    double d = v.as_double();
    if (v.is_float() && (std::isnan(d) || std::isinf(d)))
      fail("cannot convert float NaN or infinity to integer");
    long long i = v.is_float() ? static_cast<long long>(d) : static_cast<long long>(v.as_int());
    char c = conv == 'i' || conv == 'u' ? 'd' : conv;
    bool neg = i < 0;
    unsigned long long mag =
        neg ? 0ULL - static_cast<unsigned long long>(i) : static_cast<unsigned long long>(i);
    std::snprintf(fmt, sizeof fmt, "%%%sll%c", flags.c_str(), c);
    if (c == 'd') {
      std::snprintf(buf, sizeof buf, fmt, i);
    } else {
      // Python prints negative hex/octal as -ff, not as two's complement.
      std::snprintf(buf, sizeof buf, c == 'o' ? "%llo" : (c == 'x' ? "%llx" : "%llX"), mag);
      std::string digits = buf;
      if (flags.find('#') != std::string::npos)
        digits = std::string(c == 'o' ? "0o" : (c == 'x' ? "0x" : "0X")) + digits;
      if (neg)
        digits = "-" + digits;
      else if (flags.find('+') != std::string::npos)
        digits = "+" + digits;
      else if (flags.find(' ') != std::string::npos)
        digits = " " + digits;
      return digits;
    }
    return buf;
  }
  if (!v.is_number()) fail(std::string("must be real number, not ") + v.type_name());
  if (prec >= 0)
    std::snprintf(fmt, sizeof fmt, "%%%s.%d%c", flags.c_str(), std::min(prec, 300), conv);
  else
    std::snprintf(fmt, sizeof fmt, "%%%s%c", flags.c_str(), conv);
  std::snprintf(buf, sizeof buf, fmt, v.as_double());
  std::string s = buf;
  // Python spells infinities and NaN as inf / nan in lower case for e/f/g (C does too).
  return s;
}

}  // namespace

std::string percent_format(Interpreter& in, const std::string& fmt, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.items();
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args.dict();
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) fail("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c != '%') {
      out += c;
      continue;
    }
    if (++i >= fmt.size()) fail("incomplete format");
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    const Value* val = nullptr;
    Value keyed;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!mapping) fail("format requires a mapping");
      const Value* found = mapping->find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (!found) fail("KeyError: '" + fmt.substr(i + 1, close - i - 1) + "'");
      keyed = *found;
      val = &keyed;
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i])) flags += fmt[i++];
    int width = -1, prec = -1;
    if (i < fmt.size() && fmt[i] == '*') {
      const Value& w = take();
      if (!w.is_integral()) fail("* wants int");
      width = static_cast<int>(std::min<int64_t>(w.as_int(), 10000));
      ++i;
    } else {
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9')
        width = std::max(width, 0) * 10 + (fmt[i++] - '0');
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      prec = 0;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') prec = prec * 10 + (fmt[i++] - '0');
    }
    if (width > 10000 || prec > 10000) fail("format width or precision is too large");
    if (i >= fmt.size()) fail("incomplete format");
    char conv = fmt[i];
    const Value& v = val ? *val : take();
    bool left = flags.find('-') != std::string::npos;
    std::string piece;
    switch (conv) {
      case 's':
        piece = py_str(v);
        break;
      case 'r':
      case 'a':
        piece = py_repr(v);
        break;
      case 'c':
        if (v.is_integral()) {
          if (v.as_int() < 0 || v.as_int() > 0x10FFFF) fail("%c arg not in range(0x110000)");
          append_utf8(piece, static_cast<uint32_t>(v.as_int()));
        } else if (v.is_string() && cp_count(v.str()) == 1) {
          piece = v.str();
        } else {
          fail("%c requires int or char");
        }
        break;
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        std::string f;
        for (char fl : flags)
          if (fl != '-') f += fl;
        if (width > 0 && flags.find('0') != std::string::npos && !left) f += std::to_string(width);
        piece = c_number(conv, v, f, prec);
        break;
      }
      default:
        fail(std::string("unsupported format character '") + conv + "'");
    }
    if ((conv == 's' || conv == 'r' || conv == 'a') && prec >= 0) {
      std::vector<size_t> off = cp_offsets(piece);
      if (static_cast<size_t>(prec) < off.size() - 1) piece = piece.substr(0, off[static_cast<size_t>(prec)]);
    }
    out += pad(piece, width, left);
    in.check_size(out.size());
  }
  // CPython skips this check when the argument supports item access (a dict, and also a list).
  bool mapping_like = args.is_dict() || (args.is_list() && !args.is_tuple());
  if (!used_mapping && !mapping_like && next_arg < positional.size())
    fail("not all arguments converted during string formatting");
  return out;
}

// ---- str.format -------------------------------------------------------------------------------------------

namespace {

// format(value, spec) for the format-spec mini-language:
// [[fill]align][sign][#][0][width][,][.precision][type].
std::string format_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return py_str(v);
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  // fill may be any character (one code point)
  uint32_t cp;
  size_t n = spec.empty() ? 0 : utf8_next(spec, 0, &cp);
  if (n < spec.size() && is_align(spec[n])) {
    fill = spec.substr(0, n);
    align = spec[n];
    i = n + 1;
  } else if (!spec.empty() && is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  char sign = 0;
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  bool alt = false;
  if (i < spec.size() && spec[i] == '#') {
    alt = true;
    ++i;
  }
  if (i < spec.size() && spec[i] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int width = 0;
  while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') width = width * 10 + (spec[i++] - '0');
  bool grouping = false;
  if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) {
    grouping = true;
    ++i;
  }
  int prec = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    prec = 0;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') prec = prec * 10 + (spec[i++] - '0');
  }
  char type = i < spec.size() ? spec[i++] : 0;
  if (i != spec.size() || width > 10000 || prec > 10000) fail("invalid format specifier '" + spec + "'");
  std::string body;
  bool numeric = false;
  if (v.is_string() || (!v.is_number() && (type == 0 || type == 's'))) {
    if (type != 0 && type != 's')
      fail("Unknown format code '" + std::string(1, type) + "' for object of type 'str'");
    body = py_str(v);
    if (prec >= 0) {
      std::vector<size_t> off = cp_offsets(body);
      if (static_cast<size_t>(prec) < off.size() - 1) body = body.substr(0, off[static_cast<size_t>(prec)]);
    }
    if (!align) align = '<';
  } else if (v.is_number()) {
    numeric = true;
    std::string flags;
    if (sign == '+' || sign == ' ') flags += sign;
    if (alt) flags += '#';
    if (type == 0 && v.is_integral()) type = 'd';
    if (type == 'n') type = v.is_integral() ? 'd' : 'g';
    if (type == 0) {
      body = prec < 0 ? py_str(Value::floating(v.as_double())) : c_number('g', v, flags, prec);
      if (sign == '+' && v.as_double() >= 0 && prec < 0) body = "+" + body;
    } else if (type == '%') {
      body = c_number('f', Value::floating(v.as_double() * 100), flags, prec < 0 ? 6 : prec) + "%";
    } else if (type == 'b') {
      uint64_t mag = static_cast<uint64_t>(v.as_int() < 0 ? -v.as_int() : v.as_int());
      std::string bits;
      do {
        bits.insert(bits.begin(), static_cast<char>('0' + (mag & 1)));
        mag >>= 1;
      } while (mag);
      body = (v.as_int() < 0 ? "-" : (sign == '+' ? "+" : "")) + std::string(alt ? "0b" : "") + bits;
    } else if (std::strchr("dxXoeEfFgGc", type)) {
      if (std::strchr("dxXoc", type) && !v.is_integral())
        fail("Unknown format code '" + std::string(1, type) + "' for object of type 'float'");
      if (type == 'c') {
        if (v.as_int() < 0 || v.as_int() > 0x10FFFF) fail("%c arg not in range(0x110000)");
        append_utf8(body, static_cast<uint32_t>(v.as_int()));
      } else {
        body = c_number(type, v, flags, prec);
      }
    } else {
      fail("Unknown format code '" + std::string(1, type) + "' for a number");
    }
    if (grouping) {
      size_t start = (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
      size_t end = body.find_first_not_of("0123456789", start);
      if (end == std::string::npos) end = body.size();
      for (int k = static_cast<int>(end) - 3; k > static_cast<int>(start); k -= 3)
        body.insert(static_cast<size_t>(k), 1, ',');
    }
    if (!align) align = '>';
  } else {
    fail(std::string("unsupported format string passed to ") + v.type_name() + ".__format__");
  }
  int len = static_cast<int>(cp_count(body));
  if (width <= len) return body;
  int padn = width - len;
  auto rep = [&](int k) {
    std::string s;
    for (int j = 0; j < k; ++j) s += fill;
    return s;
  };
  switch (align) {
    case '<':
      return body + rep(padn);
    case '^':
      return rep(padn / 2) + body + rep(padn - padn / 2);
    case '=':
      if (numeric && !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' '))
        return body.substr(0, 1) + rep(padn) + body.substr(1);
      return rep(padn) + body;
    default:
      return rep(padn) + body;
  }
}

}  // namespace

std::string str_format(Interpreter& in, const std::string& fmt, Args& args) {
  std::string out;
  int auto_index = 0;
  bool manual = false, automatic = false;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    // Find the matching '}' (format specs may nest one level of {}).
    size_t j = i + 1;
    int depth = 1;
    while (j < fmt.size() && depth) {
      if (fmt[j] == '{')
        ++depth;
      else if (fmt[j] == '}')
        --depth;
      if (depth) ++j;
    }
    if (j >= fmt.size()) fail("expected '}' before end of string");
    std::string field = fmt.substr(i + 1, j - i - 1);
    i = j;
    std::string spec, conv;
    size_t colon = field.find(':'), bang = field.find('!');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (bang != std::string::npos && bang < field.size()) {
      conv = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    if (spec.find('{') != std::string::npos)
      fail("nested replacement fields in format specs are not supported");
    // Argument name, then .attr / [key] accessors.
    size_t k = 0;
    while (k < field.size() && field[k] != '.' && field[k] != '[') ++k;
    std::string head = field.substr(0, k);
    Value v;
    if (head.empty()) {
      if (manual) fail("cannot switch from manual field specification to automatic field numbering");
      automatic = true;
      if (static_cast<size_t>(auto_index) >= args.pos.size())
        fail("Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      v = args.pos[static_cast<size_t>(auto_index++)];
    } else if (std::isdigit(static_cast<unsigned char>(head[0]))) {
      if (automatic) fail("cannot switch from automatic field numbering to manual field specification");
      manual = true;
      size_t idx = std::strtoul(head.c_str(), nullptr, 10);
      if (idx >= args.pos.size())
        fail("Replacement index " + head + " out of range for positional args tuple");
      v = args.pos[idx];
    } else {
      bool found = false;
      for (auto& [name, val] : args.kw)
        if (name == head) {
          v = val;
          found = true;
        }
      if (!found) fail("KeyError: '" + head + "'");
    }
    while (k < field.size()) {
      if (field[k] == '.') {
        size_t e = k + 1;
        while (e < field.size() && field[e] != '.' && field[e] != '[') ++e;
        v = in.getattr(v, field.substr(k + 1, e - k - 1));
        k = e;
      } else {
        size_t e = field.find(']', k);
        if (e == std::string::npos) fail("Missing ']' in format string");
        std::string key = field.substr(k + 1, e - k - 1);
        bool digits = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
        v = in.getitem(v,
                       digits ? Value::integer(std::strtoll(key.c_str(), nullptr, 10)) : Value::string(key));
        k = e + 1;
      }
    }
    if (conv == "r" || conv == "a")
      v = Value::string(py_repr(v));
    else if (conv == "s")
      v = Value::string(py_str(v));
    else if (!conv.empty())
      fail("Unknown conversion specifier " + conv);
    out += format_spec(v, spec);
    in.check_size(out.size());
  }
  return out;
}

}  // namespace tailor::chat_template
