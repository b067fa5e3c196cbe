// JSON at the edges (config files, tokenizer.json, requests): nlohmann::json, with parse errors as Status.
// Include only from .cpp files; JSON never enters the engine or kernels.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tailor {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses text; the error names `what` (a file name or "request body") and the byte offset.
Result<Json> parse_json(std::string_view text, const std::string& what);
Result<OrderedJson> parse_ordered_json(std::string_view text, const std::string& what);
// Reads and parses a JSON file.
Result<Json> read_json_file(const std::string& path);
// A short name for the JSON type of j ("object", "string", ...), for error messages.
const char* json_type_name(const Json& j);

}  // namespace tailor
