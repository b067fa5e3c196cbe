// One grammar per JSON type: objects (properties in order, optional ones, extra keys), arrays (prefix items,
// counts), strings (lengths, patterns, formats), integers and numbers (bounds), enums and constants.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "grammar/json_schema_internal.h"
#include "grammar/json_values.h"
#include "grammar/regex.h"
#include "grammar/utf8.h"

namespace tailor::grammar {

namespace {

constexpr uint32_t kMaxCounted = 5000;  // longest counted repetition (maxLength, maxItems) expanded

const std::vector<std::string>& json_types() {
  static const std::vector<std::string> t = {"object", "array",   "string", "integer",
                                             "number", "boolean", "null"};
  return t;
}

// The JSON type name of a value, with integral numbers as "integer".
std::string value_type(const OrderedJson& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d) ? "integer" : "number";
  }
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool type_admits(const std::string& schema_type, const std::string& vtype) {
  return schema_type == vtype || (schema_type == "number" && vtype == "integer");
}

uint64_t code_points(const std::string& s) {
  uint64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct Bounds {
  std::optional<long double> lo, hi;
  bool lo_ex = false, hi_ex = false;
};

Result<Bounds> read_bounds(const OrderedJson& s, const std::string& path) {
  Bounds b;
  auto num = [&](const char* k, long double* out) -> Result<bool> {
    if (!s.contains(k)) return false;
    const OrderedJson& v = s[k];
    if (v.is_boolean()) return false;  // draft-4 exclusive flags, read below
    if (!v.is_number())
      return invalid_argument(cat("JSON Schema at ", path, ": \"", k, "\" must be a number"));
    *out = v.get<long double>();
    return true;
  };
  long double v;
  TAILOR_ASSIGN_OR_RETURN(bool has_min, num("minimum", &v));
  if (has_min) b.lo = v;
  TAILOR_ASSIGN_OR_RETURN(bool has_xmin, num("exclusiveMinimum", &v));
  if (has_xmin && (!b.lo || v >= *b.lo)) b.lo = v, b.lo_ex = true;
  TAILOR_ASSIGN_OR_RETURN(bool has_max, num("maximum", &v));
  if (has_max) b.hi = v;
  TAILOR_ASSIGN_OR_RETURN(bool has_xmax, num("exclusiveMaximum", &v));
  if (has_xmax && (!b.hi || v <= *b.hi)) b.hi = v, b.hi_ex = true;
  // Draft 4: "exclusiveMinimum": true modifies "minimum".
  if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_boolean() &&
      s["exclusiveMinimum"].get<bool>())
    b.lo_ex = true;
  if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_boolean() &&
      s["exclusiveMaximum"].get<bool>())
    b.hi_ex = true;
  return b;
}

Result<uint32_t> read_count(const OrderedJson& s, const char* k, const std::string& path, uint32_t dflt) {
  if (!s.contains(k)) return dflt;
  const OrderedJson& v = s[k];
  bool integral =
      v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0) ||
      (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() == std::floor(v.get<double>()));
  if (!integral)
    return invalid_argument(cat("JSON Schema at ", path, ": \"", k, "\" must be a non-negative integer"));
  double d = v.get<double>();
  return d >= double(UINT32_MAX) ? UINT32_MAX - 1 : uint32_t(d);
}

}  // namespace

Expr SchemaConverter::plain_string() {
  auto it = shared_.find("string");
  if (it != shared_.end()) return ref(it->second);
  uint32_t id = g_.add_rule("string");
  shared_["string"] = id;
  g_.rules[id].body = seq({lit("\""), star(json_string_char_any()), lit("\"")});
  return ref(id);
}

Expr SchemaConverter::any_value() {
  auto it = shared_.find("any_value");
  if (it != shared_.end()) return ref(it->second);
  uint32_t v = g_.add_rule("value"), o = g_.add_rule("object"), a = g_.add_rule("array");
  shared_["any_value"] = v;
  Result<Expr> num = number_expr({}, opt_.max_integer_digits, opt_.max_fraction_digits);
  TAILOR_CHECK(num.ok()) << num.status().message();
  g_.rules[v].body =
      alt({ref(o), ref(a), plain_string(), std::move(num).value(), lit("true"), lit("false"), lit("null")});
  Expr kv = seq({plain_string(), ws(), lit(":"), ws(), ref(v)});
  g_.rules[o].body =
      seq({lit("{"), ws(), opt(seq({kv, star(seq({ws(), lit(","), ws(), kv}))})), ws(), lit("}")});
  g_.rules[a].body =
      seq({lit("["), ws(), opt(seq({ref(v), star(seq({ws(), lit(","), ws(), ref(v)}))})), ws(), lit("]")});
  return ref(v);
}

// A key other than the declared ones, written without escapes (so it cannot spell a declared key in
// disguise).
Expr SchemaConverter::extra_key(const std::vector<std::string>& declared) {
  CharSet keychar = CharSet::range(0x20, kMaxCodePoint).minus(CharSet::of('"')).minus(CharSet::of('\\'));
  struct Node {
    std::map<uint32_t, size_t> kids;
    bool terminal = false;
  };
  std::vector<Node> trie(1);
  for (const std::string& k : declared) {
    if (OrderedJson(k).dump() != "\"" + k + "\"")
      continue;  // needs escapes: an unescaped key never equals it
    size_t cur = 0;
    std::string_view rest = k;
    while (!rest.empty()) {
      char32_t cp;
      size_t n = size_t(utf8_decode(rest, 0, &cp));
      if (n == 0) break;
      rest.remove_prefix(n);
      auto f = trie[cur].kids.find(cp);
      if (f == trie[cur].kids.end()) {
        trie.push_back({});
        f = trie[cur].kids.emplace(cp, trie.size() - 1).first;
      }
      cur = f->second;
    }
    trie[cur].terminal = true;
  }
  Expr free_tail = seq({star(chars(keychar)), lit("\"")});
  std::function<Expr(size_t)> build = [&](size_t n) -> Expr {
    std::vector<Expr> alts;
    if (!trie[n].terminal) alts.push_back(lit("\""));
    CharSet rest = keychar;
    for (auto [cp, child] : trie[n].kids) {
      std::string u;
      utf8_append(u, cp);
      alts.push_back(seq({lit(u), build(child)}));
      rest = rest.minus(CharSet::of(cp));
    }
    if (!rest.empty()) alts.push_back(seq({chars(rest), free_tail}));
    return alt(std::move(alts));
  };
  return seq({lit("\""), build(0)});
}

Result<Expr> SchemaConverter::typed_expr(const OrderedJson& s, const std::string& path, int depth) {
  std::vector<std::string> types;
  if (s.contains("type")) {
    const OrderedJson& t = s["type"];
    std::vector<OrderedJson> list;
    if (t.is_string()) {
      list.push_back(t);
    } else if (t.is_array() && !t.empty()) {
      for (const auto& x : t) list.push_back(x);
    } else {
      return error(path, "\"type\" must be a type name or a non-empty array of them");
    }
    for (const auto& x : list) {
      std::string name = x.is_string() ? x.get<std::string>() : x.dump();
      if (std::find(json_types().begin(), json_types().end(), name) == json_types().end()) {
        return error(path, cat("unknown type \"", name,
                               "\" (use object, array, string, integer, number, boolean, null)"));
      }
      if (std::find(types.begin(), types.end(), name) == types.end()) types.push_back(name);
    }
  } else {
    auto any_of = [&](std::initializer_list<const char*> ks) {
      for (const char* k : ks) {
        if (s.contains(k)) return true;
      }
      return false;
    };
    if (any_of({"properties", "required", "additionalProperties"})) types.push_back("object");
    if (any_of({"items", "prefixItems", "minItems", "maxItems", "additionalItems"})) types.push_back("array");
    if (any_of({"minLength", "maxLength", "pattern", "format"})) types.push_back("string");
    if (any_of({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("number");
    if (types.empty()) {
      if (s.contains("nullable") && s["nullable"] == true) return any_value();  // any value includes null
      return any_value();
    }
  }
  if (s.contains("nullable") && s["nullable"].is_boolean() && s["nullable"].get<bool>() &&
      std::find(types.begin(), types.end(), "null") == types.end()) {
    types.push_back("null");
  }
  bool has_number = std::find(types.begin(), types.end(), "number") != types.end();
  std::vector<Expr> alts;
  for (const std::string& t : types) {
    if (t == "object") {
      TAILOR_ASSIGN_OR_RETURN(Expr e, object_expr(s, path, depth));
      alts.push_back(std::move(e));
    } else if (t == "array") {
      TAILOR_ASSIGN_OR_RETURN(Expr e, array_expr(s, path, depth));
      alts.push_back(std::move(e));
    } else if (t == "string") {
      TAILOR_ASSIGN_OR_RETURN(Expr e, string_expr(s, path));
      alts.push_back(std::move(e));
    } else if (t == "integer") {
      if (has_number) continue;  // "number" already covers integers
      TAILOR_ASSIGN_OR_RETURN(Expr e, integer_expr(s, path));
      alts.push_back(std::move(e));
    } else if (t == "number") {
      TAILOR_ASSIGN_OR_RETURN(Expr e, number_expr_for(s, path));
      alts.push_back(std::move(e));
    } else if (t == "boolean") {
      alts.push_back(alt({lit("true"), lit("false")}));
    } else {
      alts.push_back(lit("null"));
    }
  }
  return alt(std::move(alts));
}

Result<Expr> SchemaConverter::object_expr(const OrderedJson& s, const std::string& path, int depth) {
  std::vector<std::pair<std::string, const OrderedJson*>> props;
  if (s.contains("properties")) {
    const OrderedJson& p = s["properties"];
    if (!p.is_object()) return error(path, "\"properties\" must be an object");
    for (auto it = p.begin(); it != p.end(); ++it) props.push_back({it.key(), &it.value()});
  }
  std::set<std::string> required;
  if (s.contains("required")) {
    const OrderedJson& r = s["required"];
    if (!r.is_array()) return error(path, "\"required\" must be an array of property names");
    for (const auto& x : r) {
      if (!x.is_string()) return error(path, "\"required\" must be an array of property names");
      required.insert(x.get<std::string>());
    }
  }
  // Extra keys: none, any value, or values of a schema.
  enum { kNone, kAny, kSchema } extra = opt_.strict_additional_properties ? kNone : kAny;
  const OrderedJson* extra_schema = nullptr;
  if (s.contains("additionalProperties")) {
    const OrderedJson& a = s["additionalProperties"];
    if (a.is_boolean()) {
      extra = a.get<bool>() ? kAny : kNone;
    } else if (a.is_object()) {
      extra = a.empty() ? kAny : kSchema;
      extra_schema = &a;
    } else {
      return error(path, "\"additionalProperties\" must be a boolean or a schema");
    }
  }
  if (s.contains("unevaluatedProperties") && s["unevaluatedProperties"] == false) extra = kNone;
  static const OrderedJson kTrue = true;
  for (const std::string& r : required) {
    bool declared = std::any_of(props.begin(), props.end(), [&](const auto& p) { return p.first == r; });
    if (declared) continue;
    if (extra == kNone) {
      return error(path, cat("required property \"", r,
                             "\" is not in \"properties\" and additional properties are "
                             "not allowed, so no object is valid"));
    }
    props.push_back({r, extra == kSchema ? extra_schema : &kTrue});
  }
  size_t n = props.size();
  std::vector<Expr> kv(n);
  std::vector<bool> req(n);
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    req[i] = required.count(props[i].first) > 0;
    names.push_back(props[i].first);
    TAILOR_ASSIGN_OR_RETURN(Expr value,
                            visit(*props[i].second, cat(path, "/properties/", props[i].first), depth + 1));
    kv[i] = seq({lit(OrderedJson(props[i].first).dump()), ws(), lit(":"), ws(), std::move(value)});
  }
  Expr extra_kv;
  if (extra != kNone) {
    Expr value;
    if (extra == kSchema) {
      TAILOR_ASSIGN_OR_RETURN(value, visit(*extra_schema, path + "/additionalProperties", depth + 1));
    } else {
      value = any_value();
    }
    extra_kv = seq({extra_key(names), ws(), lit(":"), ws(), std::move(value)});
  }
  // tail(i): properties i.. after at least one was written (so each starts with a comma).
  size_t first_req = n;
  for (size_t i = 0; i < n; ++i) {
    if (req[i]) {
      first_req = i;
      break;
    }
  }
  std::vector<Expr> tails(n + 1);
  Expr tail = extra != kNone ? star(seq({ws(), lit(","), ws(), extra_kv})) : empty_expr();
  tails[n] = tail;
  for (size_t i = n; i-- > 0;) {
    Expr item = seq({ws(), lit(","), ws(), kv[i]});
    tail = seq({req[i] ? std::move(item) : opt(std::move(item)), std::move(tail)});
    if (i <= first_req + 1) tails[i] = tail;
  }
  std::vector<Expr> alts;
  for (size_t j = 0; j < n; ++j) {
    alts.push_back(seq({kv[j], tails[j + 1]}));
    if (req[j]) break;
  }
  if (first_req == n) alts.push_back(extra != kNone ? opt(seq({extra_kv, tails[n]})) : empty_expr());
  return seq({lit("{"), ws(), alt(std::move(alts)), ws(), lit("}")});
}

Result<Expr> SchemaConverter::array_expr(const OrderedJson& s, const std::string& path, int depth) {
  std::vector<const OrderedJson*> prefix;
  const OrderedJson* item = nullptr;  // nullptr + allow_items = any value
  bool allow_items = true;
  auto items_from = [&](const OrderedJson& v, const char* kw) -> Status {
    if (v.is_boolean()) {
      allow_items = v.get<bool>();
    } else if (v.is_object()) {
      item = &v;
    } else {
      return error(path, cat("\"", kw, "\" must be a schema"));
    }
    return {};
  };
  if (s.contains("prefixItems")) {
    if (!s["prefixItems"].is_array()) return error(path, "\"prefixItems\" must be an array of schemas");
    for (const auto& x : s["prefixItems"]) prefix.push_back(&x);
    if (s.contains("items")) TAILOR_RETURN_IF_ERROR(items_from(s["items"], "items"));
  } else if (s.contains("items") && s["items"].is_array()) {
    for (const auto& x : s["items"]) prefix.push_back(&x);  // draft 4-2019 tuple form
    if (s.contains("additionalItems"))
      TAILOR_RETURN_IF_ERROR(items_from(s["additionalItems"], "additionalItems"));
  } else if (s.contains("items")) {
    TAILOR_RETURN_IF_ERROR(items_from(s["items"], "items"));
  }
  TAILOR_ASSIGN_OR_RETURN(uint32_t min, read_count(s, "minItems", path, 0));
  TAILOR_ASSIGN_OR_RETURN(uint32_t max, read_count(s, "maxItems", path, kUnbounded));
  const uint32_t k = uint32_t(prefix.size());
  if (!allow_items) max = std::min(max, k);
  if (min > max) return error(path, cat("minItems ", min, " is above the most items allowed (", max, ")"));
  if (min > kMaxCounted) return error(path, cat("minItems above ", kMaxCounted, " is not supported"));
  if (max != kUnbounded && max > kMaxCounted) max = std::max(min, kMaxCounted);  // generate a subset
  std::vector<Expr> elems;
  for (uint32_t i = 0; i < k && i < std::max<uint32_t>(max == kUnbounded ? k : max, 0); ++i) {
    TAILOR_ASSIGN_OR_RETURN(Expr e, visit(*prefix[i], cat(path, "/prefixItems/", i), depth + 1));
    elems.push_back(std::move(e));
  }
  Expr item_expr;
  if (allow_items && (max == kUnbounded || max > k)) {
    if (item) {
      TAILOR_ASSIGN_OR_RETURN(item_expr, visit(*item, path + "/items", depth + 1));
    } else {
      item_expr = any_value();
    }
  }
  auto sep = [&]() { return seq({ws(), lit(","), ws()}); };
  std::function<Expr(uint32_t)> rest = [&](uint32_t i) -> Expr {
    if (max != kUnbounded && i >= max) return empty_expr();
    if (i >= k) {
      uint32_t lo = min > i ? min - i : 0;
      uint32_t hi = max == kUnbounded ? kUnbounded : max - i;
      return rep(seq({sep(), item_expr}), lo, hi);
    }
    Expr e = seq({sep(), elems[i], rest(i + 1)});
    return i < min ? std::move(e) : opt(std::move(e));
  };
  Expr body;
  if (max != 0) {
    Expr first = seq({k > 0 ? elems[0] : item_expr, rest(1)});
    body = min >= 1 ? std::move(first) : opt(std::move(first));
  }
  return seq({lit("["), ws(), std::move(body), ws(), lit("]")});
}

Result<Expr> SchemaConverter::string_expr(const OrderedJson& s, const std::string& path) {
  TAILOR_ASSIGN_OR_RETURN(uint32_t min, read_count(s, "minLength", path, 0));
  TAILOR_ASSIGN_OR_RETURN(uint32_t max, read_count(s, "maxLength", path, kUnbounded));
  if (min > max) return error(path, cat("minLength ", min, " is above maxLength ", max));
  bool has_pattern = s.contains("pattern"), has_format = s.contains("format");
  if (has_pattern && !s["pattern"].is_string()) return error(path, "\"pattern\" must be a string");
  if (has_format && !s["format"].is_string()) return error(path, "\"format\" must be a string");
  if (has_pattern && has_format) return error(path, "\"pattern\" together with \"format\" is not supported");
  auto check_implied = [&](uint32_t lo, uint32_t hi, const std::string& what) -> Status {
    if ((min == 0 || lo >= min) && (max == kUnbounded || hi <= max)) return {};
    return error(path,
                 cat(what, " produces strings of ", lo, " to ",
                     hi == UINT32_MAX ? std::string("unbounded") : std::to_string(hi),
                     " characters; combining it with minLength/maxLength that cut into that range is not "
                     "supported (put the length into the pattern, e.g. [a-z]{3,8})"));
  };
  if (has_pattern) {
    std::string pattern = s["pattern"].get<std::string>();
    RegexOptions ro;
    ro.json_string = true;
    ro.ascii_safe = true;
    Result<Expr> e = regex_to_expr(pattern, ro);
    if (!e.ok()) return error(path, e.status().message());
    if (min > 0 || max != kUnbounded) {
      TAILOR_ASSIGN_OR_RETURN(auto bounds, regex_length_bounds(pattern));
      TAILOR_RETURN_IF_ERROR(check_implied(bounds.first, bounds.second, cat("pattern \"", pattern, "\"")));
    }
    Expr body = std::move(e).value();
    if (body.kind == ExprKind::repeat && (body.max == kUnbounded ? body.min : body.max) >= 4) {
      // A pattern that is one counted repetition ([a-z]{1,200}) becomes a counted-loop rule too.
      uint32_t id = g_.add_rule("pattern");
      g_.rules[id].body = seq({std::move(body), lit("\"")});
      return seq({lit("\""), ref(id)});
    }
    return seq({lit("\""), std::move(body), lit("\"")});
  }
  if (has_format) {
    std::string f = s["format"].get<std::string>();
    std::optional<Expr> e = string_format_expr(f);
    if (!e) return error(path, cat("unsupported format \"", f, "\" (supported: ", supported_formats(), ")"));
    auto [lo, hi] = string_format_length(f);
    TAILOR_RETURN_IF_ERROR(check_implied(lo, hi, cat("format \"", f, "\"")));
    return seq({lit("\""), std::move(*e), lit("\"")});
  }
  if (min == 0 && max == kUnbounded) return plain_string();
  // The body after the opening quote is its own rule of the form X{min,max} Y: the compiler runs it as a
  // counted loop (a counter instead of max unrolled copies), whatever the bounds.
  std::string key = cat("chars_", min, "_", max == kUnbounded ? std::string("inf") : std::to_string(max));
  auto it = shared_.find(key);
  if (it == shared_.end()) {
    uint32_t id = g_.add_rule(key);
    it = shared_.emplace(key, id).first;
    g_.rules[id].body = seq({rep(json_string_char_any(), min, max), lit("\"")});
  }
  return seq({lit("\""), ref(it->second)});
}

Result<Expr> SchemaConverter::integer_expr(const OrderedJson& s, const std::string& path) {
  TAILOR_ASSIGN_OR_RETURN(Bounds b, read_bounds(s, path));
  const int64_t cap = [&] {
    int64_t v = 1;
    for (uint32_t i = 0; i < std::clamp<uint32_t>(opt_.max_integer_digits, 1, 18); ++i) v *= 10;
    return v - 1;
  }();
  constexpr long double kLimit = 9.2e18L;
  long double lo = -static_cast<long double>(cap), hi = static_cast<long double>(cap);
  if (b.lo) lo = b.lo_ex ? std::floor(*b.lo) + 1 : std::ceil(*b.lo);
  if (b.hi) hi = b.hi_ex ? std::ceil(*b.hi) - 1 : std::floor(*b.hi);
  if (b.lo && !b.hi) hi = std::max(hi, lo + static_cast<long double>(cap) > kLimit ? kLimit : lo + cap);
  if (b.hi && !b.lo) lo = std::min(lo, hi - static_cast<long double>(cap) < -kLimit ? -kLimit : hi - cap);
  if (!std::isfinite(double(lo)) || !std::isfinite(double(hi)) || lo < -kLimit || hi > kLimit) {
    return error(path, "integer bounds beyond +-9.2e18 are not supported");
  }
  if (lo > hi) return error(path, "no integer satisfies minimum/maximum");
  return int_range_expr(int64_t(lo), int64_t(hi));
}

Result<Expr> SchemaConverter::number_expr_for(const OrderedJson& s, const std::string& path) {
  TAILOR_ASSIGN_OR_RETURN(Bounds b, read_bounds(s, path));
  for (const auto& v : {b.lo, b.hi}) {
    if (v && (*v != std::floor(*v) || std::fabs(double(*v)) > 1e17)) {
      return error(path, cat("number bound ", double(*v),
                             " is not supported: number bounds must be integers "
                             "(use \"type\": \"integer\" or integral minimum/maximum)"));
    }
  }
  NumberBounds nb;
  nb.lo = b.lo;
  nb.hi = b.hi;
  nb.lo_exclusive = b.lo_ex;
  nb.hi_exclusive = b.hi_ex;
  Result<Expr> e = number_expr(nb, opt_.max_integer_digits, opt_.max_fraction_digits);
  if (!e.ok()) return error(path, e.status().message());
  return e;
}

Result<Expr> SchemaConverter::enum_expr(const OrderedJson& s, const std::string& path) {
  std::vector<OrderedJson> values;
  if (s.contains("enum")) {
    if (!s["enum"].is_array() || s["enum"].empty()) return error(path, "\"enum\" must be a non-empty array");
    for (const auto& v : s["enum"]) values.push_back(v);
  }
  if (s.contains("const")) {
    if (s.contains("enum")) {
      bool in = std::find(values.begin(), values.end(), s["const"]) != values.end();
      values.clear();
      if (in) values.push_back(s["const"]);
    } else {
      values.push_back(s["const"]);
    }
  }
  // Sibling keywords that we can check on each listed value; anything else is refused rather than ignored.
  static const std::set<std::string> checkable = {"enum",
                                                  "const",
                                                  "type",
                                                  "minLength",
                                                  "maxLength",
                                                  "minimum",
                                                  "maximum",
                                                  "exclusiveMinimum",
                                                  "exclusiveMaximum",
                                                  "nullable"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& k = it.key();
    if (checkable.count(k) || k[0] == '$' || k == "title" || k == "description" || k == "default" ||
        k == "examples" || k == "deprecated" || k == "readOnly" || k == "writeOnly" || k == "definitions") {
      continue;
    }
    static const std::set<std::string> ignored_unknown = {"discriminator", "example", "contentMediaType",
                                                          "contentEncoding"};
    if (ignored_unknown.count(k)) continue;
    static const std::set<std::string> validation = {"pattern",
                                                     "format",
                                                     "items",
                                                     "prefixItems",
                                                     "properties",
                                                     "required",
                                                     "additionalProperties",
                                                     "minItems",
                                                     "maxItems",
                                                     "additionalItems"};
    if (validation.count(k)) return error(path, cat("\"", k, "\" next to enum/const is not supported"));
  }
  TAILOR_ASSIGN_OR_RETURN(Bounds b, read_bounds(s, path));
  TAILOR_ASSIGN_OR_RETURN(uint32_t min_len, read_count(s, "minLength", path, 0));
  TAILOR_ASSIGN_OR_RETURN(uint32_t max_len, read_count(s, "maxLength", path, kUnbounded));
  std::vector<std::string> types;
  if (s.contains("type")) {
    if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
    if (s["type"].is_array()) {
      for (const auto& t : s["type"]) {
        if (t.is_string()) types.push_back(t.get<std::string>());
      }
    }
    if (s.contains("nullable") && s["nullable"] == true) types.push_back("null");
  }
  std::vector<Expr> alts;
  std::set<std::string> seen;
  for (const OrderedJson& v : values) {
    std::string vt = value_type(v);
    if (!types.empty() &&
        std::none_of(types.begin(), types.end(), [&](const std::string& t) { return type_admits(t, vt); })) {
      continue;
    }
    if (v.is_string()) {
      uint64_t n = code_points(v.get<std::string>());
      if (n < min_len || (max_len != kUnbounded && n > max_len)) continue;
    }
    if (v.is_number()) {
      long double x = v.get<long double>();
      if (b.lo && (x < *b.lo || (b.lo_ex && x == *b.lo))) continue;
      if (b.hi && (x > *b.hi || (b.hi_ex && x == *b.hi))) continue;
    }
    std::string text = v.dump();
    if (seen.insert(text).second) alts.push_back(lit(text));
  }
  if (alts.empty())
    return error(path, "no value of \"enum\"/\"const\" satisfies the other keywords of the schema");
  return alt(std::move(alts));
}

// oneOf needs exactly one branch to match. Generating from the union is only right when no value can match
// two branches: accept branches of different JSON types, literal branches with different values, or objects
// told apart by a required property whose const/enum values differ (a discriminator, as pydantic emits).
Status SchemaConverter::check_one_of(const std::vector<OrderedJson>& branches, const std::string& path,
                                     int depth) const {
  struct Info {
    std::set<std::string> types;                    // "integer" is inside "number"
    std::optional<std::set<std::string>> literals;  // dumped values when the branch is enum/const only
    OrderedJson resolved;
  };
  std::vector<Info> infos;
  for (const OrderedJson& b : branches) {
    TAILOR_ASSIGN_OR_RETURN(OrderedJson r, resolve(b, path, depth + 1));
    Info in;
    in.resolved = r;
    if (r.is_object() && (r.contains("enum") || r.contains("const"))) {
      std::set<std::string> lits;
      if (r.contains("const")) lits.insert(r["const"].dump());
      if (r.contains("enum") && r["enum"].is_array()) {
        for (const auto& v : r["enum"]) lits.insert(v.dump());
      }
      for (const std::string& l : lits) {
        Result<OrderedJson> v = parse_ordered_json(l, "enum");
        if (v.ok()) in.types.insert(value_type(*v));
      }
      in.literals = lits;
    } else if (r.is_object() && r.contains("type")) {
      if (r["type"].is_string()) in.types.insert(r["type"].get<std::string>());
      if (r["type"].is_array()) {
        for (const auto& t : r["type"]) {
          if (t.is_string()) in.types.insert(t.get<std::string>());
        }
      }
      if (r.contains("nullable") && r["nullable"] == true) in.types.insert("null");
    } else {
      for (const std::string& t : json_types()) in.types.insert(t);
    }
    infos.push_back(std::move(in));
  }
  auto overlap_types = [](const std::set<std::string>& a, const std::set<std::string>& b) {
    for (const std::string& t : a) {
      for (const std::string& u : b) {
        if (t == u || (t == "number" && u == "integer") || (t == "integer" && u == "number")) return true;
      }
    }
    return false;
  };
  // The const/enum values of property `p` in an object branch, when it is required there.
  auto discriminator_values = [&](const OrderedJson& r,
                                  const std::string& p) -> std::optional<std::set<std::string>> {
    if (!r.is_object() || !r.contains("properties") || !r["properties"].is_object() ||
        !r["properties"].contains(p)) {
      return std::nullopt;
    }
    if (!r.contains("required") || !r["required"].is_array() ||
        std::find(r["required"].begin(), r["required"].end(), p) == r["required"].end()) {
      return std::nullopt;
    }
    Result<OrderedJson> ps = resolve(r["properties"][p], path, depth + 1);
    if (!ps.ok() || !ps->is_object()) return std::nullopt;
    std::set<std::string> vals;
    if (ps->contains("const")) vals.insert((*ps)["const"].dump());
    if (ps->contains("enum") && (*ps)["enum"].is_array()) {
      for (const auto& v : (*ps)["enum"]) vals.insert(v.dump());
    }
    if (vals.empty()) return std::nullopt;
    return vals;
  };
  for (size_t i = 0; i < infos.size(); ++i) {
    for (size_t j = i + 1; j < infos.size(); ++j) {
      const Info &a = infos[i], &b = infos[j];
      if (!overlap_types(a.types, b.types)) continue;
      if (a.literals && b.literals) {
        bool common = std::any_of(a.literals->begin(), a.literals->end(),
                                  [&](const std::string& l) { return b.literals->count(l) > 0; });
        if (!common) continue;
      }
      bool told_apart = false;
      if (a.resolved.is_object() && a.resolved.contains("properties") &&
          a.resolved["properties"].is_object()) {
        for (auto it = a.resolved["properties"].begin(); it != a.resolved["properties"].end() && !told_apart;
             ++it) {
          auto va = discriminator_values(a.resolved, it.key());
          auto vb = discriminator_values(b.resolved, it.key());
          if (!va || !vb) continue;
          told_apart =
              std::none_of(va->begin(), va->end(), [&](const std::string& x) { return vb->count(x) > 0; });
        }
      }
      if (told_apart) continue;
      return error(path,
                   cat("oneOf branches ", i, " and ", j,
                       " may both match the same value, so a value generated "
                       "from either could be invalid; use anyOf, or tell them apart with a required property "
                       "whose const/enum values differ"));
    }
  }
  return {};
}

Result<Grammar> json_schema_to_grammar(std::string_view schema_json, const JsonSchemaOptions& opt) {
  TAILOR_ASSIGN_OR_RETURN(OrderedJson doc, parse_ordered_json(schema_json, "JSON Schema"));
  try {
    SchemaConverter conv(doc, opt);
    return conv.run();
  } catch (const std::exception& e) {
    return invalid_argument(cat("JSON Schema: ", e.what()));
  }
}

}  // namespace tailor::grammar
