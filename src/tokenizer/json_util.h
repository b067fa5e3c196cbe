// Small typed accessors over nlohmann::json for the tokenizer.json loader: every failure names the JSON path
// and what was expected, and nothing throws.
#pragma once

#include <string>

#include "core/json.h"
#include "core/status.h"

namespace tailor::tok {

// The "type" string of a component object, or an error naming `path`.
Result<std::string> component_type(const Json& j, const std::string& path);
Result<std::string> get_string(const Json& j, const char* key, const std::string& path);
// Missing or null -> def.
Result<std::string> get_string_or(const Json& j, const char* key, const std::string& path,
                                  const std::string& def);
Result<bool> get_bool_or(const Json& j, const char* key, const std::string& path, bool def);
Result<long long> get_int_or(const Json& j, const char* key, const std::string& path, long long def);
// j[key] must be an array; returns a pointer into j.
Result<const Json*> get_array(const Json& j, const char* key, const std::string& path);
// {"String": "x"} or {"Regex": "x"} as used by Split/Replace: sets *is_regex.
Result<std::string> get_pattern(const Json& j, const char* key, const std::string& path, bool* is_regex);
// Components nest through Sequence; each level adds "[i]" to the path. Refuses absurd depths before they can
// exhaust the stack (real files nest two levels).
Status check_nesting(const std::string& path);
Status unknown_component(const std::string& kind, const std::string& type, const std::string& path,
                         const char* supported);

}  // namespace tailor::tok
