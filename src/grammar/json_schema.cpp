#include "grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/json.h"
#include "grammar/json_schema_internal.h"
#include "grammar/json_values.h"
#include "grammar/regex.h"
#include "grammar/utf8.h"

namespace tailor::grammar {

namespace {

constexpr int kMaxDepth = 128;
constexpr uint32_t kMaxCounted = 5000;  // longest counted repetition (maxLength, maxItems) we expand

// Keywords that do not change which values are valid.
const std::set<std::string>& annotations() {
  static const std::set<std::string> s = {
      "$schema",         "$id",      "$comment",    "title",           "description",
      "default",         "examples", "example",     "deprecated",      "readOnly",
      "writeOnly",       "$defs",    "definitions", "discriminator",   "contentMediaType",
      "contentEncoding", "$anchor",  "$vocabulary", "propertyOrdering"};
  return s;
}

// Validation keywords tailor cannot enforce. (Unknown keywords are ignored, as validators ignore them.)
const std::set<std::string>& unsupported_keywords() {
  static const std::set<std::string> s = {"multipleOf",
                                          "uniqueItems",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "minProperties",
                                          "maxProperties",
                                          "patternProperties",
                                          "propertyNames",
                                          "dependencies",
                                          "dependentRequired",
                                          "dependentSchemas",
                                          "if",
                                          "then",
                                          "else",
                                          "not",
                                          "unevaluatedItems",
                                          "unevaluatedProperties",
                                          "$dynamicRef",
                                          "$recursiveRef",
                                          "$dynamicAnchor",
                                          "$recursiveAnchor"};
  return s;
}

bool trivially_satisfied(const std::string& k, const OrderedJson& v, const OrderedJson& s) {
  if (k == "uniqueItems") return v.is_boolean() && !v.get<bool>();
  if (k == "unevaluatedProperties" || k == "unevaluatedItems") return v.is_boolean() && !v.get<bool>();
  if (k == "multipleOf") {
    // multipleOf 1 on integers changes nothing
    return v.is_number() && v.get<double>() == 1.0 && s.contains("type") && s["type"] == "integer";
  }
  if (k == "minProperties") return v.is_number_integer() && v.get<int64_t>() <= 0;
  return false;
}

}  // namespace

SchemaConverter::SchemaConverter(const OrderedJson& doc, const JsonSchemaOptions& opt)
    : doc_(doc), opt_(opt) {}

Status SchemaConverter::error(const std::string& path, const std::string& msg) const {
  return invalid_argument(cat("JSON Schema at ", path.empty() ? "/" : path, ": ", msg));
}

Expr SchemaConverter::ws() const {
  if (!opt_.flexible_whitespace || opt_.max_whitespace == 0) return empty_expr();
  CharSet s = CharSet::of(' ');
  s.add('\t', '\n');
  return rep(chars(s), 0, opt_.max_whitespace);
}

Result<Grammar> SchemaConverter::run() {
  uint32_t root = g_.add_rule("root");
  g_.root = root;
  TAILOR_ASSIGN_OR_RETURN(Expr body, visit(doc_, "", 0));
  g_.rules[root].body = std::move(body);
  TAILOR_RETURN_IF_ERROR(g_.validate());
  return std::move(g_);
}

// ---- references ----

Result<const OrderedJson*> SchemaConverter::lookup(const std::string& ref, const std::string& path) const {
  if (ref.empty() || ref[0] != '#') {
    return error(path, cat("$ref \"", ref,
                           "\" points outside this document; only local references (#/...) are "
                           "supported: inline the referenced schema"));
  }
  std::string ptr = ref.substr(1);
  // Percent-decoding (URI fragment), then JSON pointer unescaping per segment.
  std::string dec;
  for (size_t i = 0; i < ptr.size(); ++i) {
    auto hexv = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : -1;
    };
    if (ptr[i] == '%' && i + 2 < ptr.size() && hexv(ptr[i + 1]) >= 0 && hexv(ptr[i + 2]) >= 0) {
      dec += char(hexv(ptr[i + 1]) * 16 + hexv(ptr[i + 2]));
      i += 2;
    } else {
      dec += ptr[i];
    }
  }
  if (!dec.empty() && dec[0] != '/') {
    return error(
        path, cat("$ref \"", ref, "\" uses a named anchor; only JSON pointers (#/$defs/Name) are supported"));
  }
  const OrderedJson* cur = &doc_;
  size_t i = 0;
  while (i < dec.size()) {
    size_t j = dec.find('/', i + 1);
    if (j == std::string::npos) j = dec.size();
    std::string seg = dec.substr(i + 1, j - i - 1);
    std::string un;
    for (size_t k = 0; k < seg.size(); ++k) {
      if (seg[k] == '~' && k + 1 < seg.size() && (seg[k + 1] == '0' || seg[k + 1] == '1')) {
        un += seg[k + 1] == '0' ? '~' : '/';
        ++k;
      } else {
        un += seg[k];
      }
    }
    if (cur->is_object() && cur->contains(un)) {
      cur = &(*cur)[un];
    } else if (cur->is_array() && !un.empty() && std::all_of(un.begin(), un.end(), ::isdigit) &&
               std::stoull(un) < cur->size()) {
      cur = &(*cur)[std::stoull(un)];
    } else {
      return error(path, cat("$ref \"", ref, "\" does not resolve: no \"", un, "\" in the document"));
    }
    i = j;
  }
  return cur;
}

Result<uint32_t> SchemaConverter::ref_rule(const std::string& ref, const std::string& path, int depth) {
  auto it = ref_rules_.find(ref);
  if (it != ref_rules_.end()) return it->second;
  TAILOR_ASSIGN_OR_RETURN(const OrderedJson* target, lookup(ref, path));
  if (target == &doc_) {
    ref_rules_[ref] = g_.root;
    return g_.root;
  }
  std::string name = ref.substr(ref.rfind('/') + 1);
  uint32_t id = g_.add_rule(name.empty() ? "ref" : name);
  ref_rules_[ref] = id;  // before visiting: recursive references resolve to this rule
  TAILOR_ASSIGN_OR_RETURN(Expr body, visit(*target, ref.substr(1), depth + 1));
  g_.rules[id].body = std::move(body);
  return id;
}

// A schema with its top-level $ref replaced by the target merged with the sibling keywords.
Result<OrderedJson> SchemaConverter::resolve(const OrderedJson& s, const std::string& path, int depth) const {
  if (depth > kMaxDepth) return error(path, "$ref / allOf nesting is too deep (or circular)");
  if (!s.is_object() || !s.contains("$ref")) return s;
  if (!s["$ref"].is_string()) return error(path, "\"$ref\" must be a string");
  TAILOR_ASSIGN_OR_RETURN(const OrderedJson* target, lookup(s["$ref"].get<std::string>(), path));
  TAILOR_ASSIGN_OR_RETURN(OrderedJson t, resolve(*target, path, depth + 1));
  OrderedJson rest = s;
  rest.erase("$ref");
  if (t.is_boolean()) {
    if (!t.get<bool>()) return t;
    t = OrderedJson::object();
  }
  return merge(t, rest, path, depth + 1);
}

// ---- allOf merging ----

Result<OrderedJson> SchemaConverter::merge(const OrderedJson& a_in, const OrderedJson& b_in,
                                           const std::string& path, int depth) const {
  TAILOR_ASSIGN_OR_RETURN(OrderedJson a, resolve(a_in, path, depth + 1));
  TAILOR_ASSIGN_OR_RETURN(OrderedJson b, resolve(b_in, path, depth + 1));
  if (a.is_boolean()) return a.get<bool>() ? b : a;
  if (b.is_boolean()) return b.get<bool>() ? a : b;
  if (!a.is_object() || !b.is_object())
    return error(path, "allOf: every sub-schema must be an object or boolean");
  OrderedJson out = a;
  auto as_types = [](const OrderedJson& t) {
    std::vector<std::string> v;
    if (t.is_string()) v.push_back(t.get<std::string>());
    if (t.is_array()) {
      for (const auto& x : t) {
        if (x.is_string()) v.push_back(x.get<std::string>());
      }
    }
    return v;
  };
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string& k = it.key();
    const OrderedJson& v = it.value();
    if (!out.contains(k)) {
      out[k] = v;
      continue;
    }
    OrderedJson& x = out[k];
    if (x == v || annotations().count(k)) continue;
    if (k == "properties" && x.is_object() && v.is_object()) {
      for (auto p = v.begin(); p != v.end(); ++p) {
        if (x.contains(p.key())) {
          x[p.key()] = OrderedJson{{"allOf", OrderedJson::array({x[p.key()], p.value()})}};
        } else {
          x[p.key()] = p.value();
        }
      }
    } else if (k == "required" && x.is_array() && v.is_array()) {
      for (const auto& r : v) {
        if (std::find(x.begin(), x.end(), r) == x.end()) x.push_back(r);
      }
    } else if (k == "type") {
      std::vector<std::string> ta = as_types(x), tb = as_types(v), both;
      for (const std::string& t : ta) {
        for (const std::string& u : tb) {
          if (t == u)
            both.push_back(t);
          else if (t == "integer" && u == "number")
            both.push_back("integer");
          else if (t == "number" && u == "integer")
            both.push_back("integer");
        }
      }
      if (both.empty())
        return error(path, "allOf: the sub-schemas require different types, so nothing is valid");
      x = both.size() == 1 ? OrderedJson(both[0]) : OrderedJson(both);
    } else if ((k == "minimum" || k == "minLength" || k == "minItems" || k == "exclusiveMinimum") &&
               x.is_number() && v.is_number()) {
      if (v.get<double>() > x.get<double>()) x = v;
    } else if ((k == "maximum" || k == "maxLength" || k == "maxItems" || k == "exclusiveMaximum") &&
               x.is_number() && v.is_number()) {
      if (v.get<double>() < x.get<double>()) x = v;
    } else if (k == "additionalProperties") {
      if (x.is_boolean() && !x.get<bool>()) continue;
      if (v.is_boolean() && !v.get<bool>()) {
        x = false;
      } else if (x.is_boolean()) {
        x = v;
      } else if (!v.is_boolean()) {
        x = OrderedJson{{"allOf", OrderedJson::array({x, v})}};
      }
    } else if (k == "items" && !x.is_array() && !v.is_array()) {
      x = OrderedJson{{"allOf", OrderedJson::array({x, v})}};
    } else if (k == "enum" && x.is_array() && v.is_array()) {
      OrderedJson both = OrderedJson::array();
      for (const auto& e : x) {
        if (std::find(v.begin(), v.end(), e) != v.end()) both.push_back(e);
      }
      if (both.empty()) return error(path, "allOf: the enums have no value in common");
      x = both;
    } else if (k == "$defs" || k == "definitions") {
      continue;
    } else {
      return error(path, cat("allOf: two sub-schemas set \"", k, "\" differently (", x.dump(), " and ",
                             v.dump(), "); merging them is not supported"));
    }
  }
  return out;
}

// ---- main visitor ----

Result<Expr> SchemaConverter::visit(const OrderedJson& s, const std::string& path, int depth) {
  if (depth > kMaxDepth) return error(path, cat("schema nests deeper than ", kMaxDepth, " levels"));
  if (s.is_boolean()) {
    if (s.get<bool>()) return any_value();
    return error(path, "the schema `false` matches nothing");
  }
  if (!s.is_object())
    return error(path, cat("a schema must be an object or a boolean, found ", s.type_name()));

  std::vector<std::string> bad;
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (unsupported_keywords().count(it.key()) && !trivially_satisfied(it.key(), it.value(), s)) {
      bad.push_back("\"" + it.key() + "\"");
    }
  }
  if (!bad.empty()) {
    std::string list;
    for (size_t i = 0; i < bad.size(); ++i) list += (i ? ", " : "") + bad[i];
    return error(path, cat("unsupported keyword", bad.size() > 1 ? "s " : " ", list,
                           ": it changes which values are valid and tailor cannot enforce it; remove it or "
                           "restate the constraint with supported keywords"));
  }

  auto has_validation_siblings = [&](std::initializer_list<const char*> skip) {
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (annotations().count(it.key())) continue;
      bool skipped = false;
      for (const char* k : skip) skipped = skipped || it.key() == k;
      if (!skipped) return true;
    }
    return false;
  };

  if (s.contains("$ref")) {
    if (!s["$ref"].is_string()) return error(path, "\"$ref\" must be a string");
    if (!has_validation_siblings({"$ref"})) {
      TAILOR_ASSIGN_OR_RETURN(uint32_t rule, ref_rule(s["$ref"].get<std::string>(), path, depth));
      return ref(rule);
    }
    TAILOR_ASSIGN_OR_RETURN(OrderedJson merged, resolve(s, path, depth));
    return visit(merged, path, depth + 1);
  }
  if (s.contains("allOf")) {
    const OrderedJson& all = s["allOf"];
    if (!all.is_array() || all.empty()) return error(path, "\"allOf\" must be a non-empty array");
    OrderedJson merged = s;
    merged.erase("allOf");
    for (size_t i = 0; i < all.size(); ++i) {
      TAILOR_ASSIGN_OR_RETURN(merged, merge(merged, all[i], cat(path, "/allOf/", i), depth));
    }
    return visit(merged, path, depth + 1);
  }
  if (s.contains("anyOf") || s.contains("oneOf")) {
    if (s.contains("anyOf") && s.contains("oneOf"))
      return error(path, "\"anyOf\" together with \"oneOf\" is not supported");
    const char* kw = s.contains("anyOf") ? "anyOf" : "oneOf";
    const OrderedJson& branches = s[kw];
    if (!branches.is_array() || branches.empty())
      return error(path, cat("\"", kw, "\" must be a non-empty array"));
    bool siblings = has_validation_siblings({kw});
    OrderedJson rest = s;
    rest.erase(kw);
    std::vector<OrderedJson> resolved;
    for (size_t i = 0; i < branches.size(); ++i) {
      std::string bp = cat(path, "/", kw, "/", i);
      if (siblings) {
        TAILOR_ASSIGN_OR_RETURN(OrderedJson m, merge(rest, branches[i], bp, depth));
        resolved.push_back(std::move(m));
      } else {
        resolved.push_back(branches[i]);
      }
    }
    if (std::string(kw) == "oneOf") TAILOR_RETURN_IF_ERROR(check_one_of(resolved, path, depth));
    std::vector<Expr> alts;
    for (size_t i = 0; i < resolved.size(); ++i) {
      if (resolved[i].is_boolean() && !resolved[i].get<bool>()) continue;  // a `false` branch adds nothing
      TAILOR_ASSIGN_OR_RETURN(Expr e, visit(resolved[i], cat(path, "/", kw, "/", i), depth + 1));
      alts.push_back(std::move(e));
    }
    if (alts.empty()) return error(path, cat("every \"", kw, "\" branch is `false`: nothing is valid"));
    return alt(std::move(alts));
  }
  if (s.contains("enum") || s.contains("const")) return enum_expr(s, path);
  return typed_expr(s, path, depth);
}

}  // namespace tailor::grammar
