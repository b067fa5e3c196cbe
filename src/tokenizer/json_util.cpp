#include "tokenizer/json_util.h"

namespace tailor::tok {

Result<std::string> component_type(const Json& j, const std::string& path) {
  if (!j.is_object()) return invalid_argument(cat(path, ": expected an object, got ", json_type_name(j)));
  auto it = j.find("type");
  if (it == j.end() || !it->is_string())
    return invalid_argument(cat(path, ": missing string field \"type\""));
  return it->get<std::string>();
}

Result<std::string> get_string(const Json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return invalid_argument(
        cat(path, ".", key, ": expected a string, got ", it == j.end() ? "nothing" : json_type_name(*it)));
  }
  return it->get<std::string>();
}

Result<std::string> get_string_or(const Json& j, const char* key, const std::string& path,
                                  const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string())
    return invalid_argument(cat(path, ".", key, ": expected a string, got ", json_type_name(*it)));
  return it->get<std::string>();
}

Result<bool> get_bool_or(const Json& j, const char* key, const std::string& path, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean())
    return invalid_argument(cat(path, ".", key, ": expected true or false, got ", json_type_name(*it)));
  return it->get<bool>();
}

Result<long long> get_int_or(const Json& j, const char* key, const std::string& path, long long def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer()) {
    return invalid_argument(cat(path, ".", key, ": expected an integer, got ", json_type_name(*it)));
  }
  return it->get<long long>();
}

Result<const Json*> get_array(const Json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) {
    return invalid_argument(
        cat(path, ".", key, ": expected an array, got ", it == j.end() ? "nothing" : json_type_name(*it)));
  }
  return &*it;
}

Result<std::string> get_pattern(const Json& j, const char* key, const std::string& path, bool* is_regex) {
  auto it = j.find(key);
  const std::string where = cat(path, ".", key);
  if (it == j.end() || !it->is_object()) {
    return invalid_argument(cat(where, ": expected {\"String\": ...} or {\"Regex\": ...}"));
  }
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    *is_regex = false;
    return s->get<std::string>();
  }
  if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    *is_regex = true;
    return r->get<std::string>();
  }
  return invalid_argument(cat(where, ": expected {\"String\": ...} or {\"Regex\": ...}"));
}

Status check_nesting(const std::string& path) {
  size_t depth = 0;
  for (char c : path) depth += c == '[';
  if (depth > 32)
    return unsupported(cat(path.substr(0, 80), "...: components nested more than 32 levels deep"));
  return {};
}

Status unknown_component(const std::string& kind, const std::string& type, const std::string& path,
                         const char* supported) {
  return unsupported(cat(path, ": unknown ", kind, " type \"", type, "\" (supported: ", supported, ")"));
}

}  // namespace tailor::tok
