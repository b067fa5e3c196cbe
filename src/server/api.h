// The OpenAI wire format at the edge: request bodies -> typed requests (every field checked, errors that name
// the field), and the error JSON {"error": {message, type, param, code}}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "sample/sampler.h"

namespace tailor::api {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field; empty -> null
  std::string code;   // machine-readable reason; empty -> null
};
OrderedJson error_json(const ApiError& e);
ApiError bad_field(const std::string& param, const std::string& message, const std::string& code = "");

struct ResponseFormat {
  enum class Kind { text, json_object, json_schema } kind = Kind::text;
  std::string schema_json;  // json_schema: the schema document (key order kept)
  std::string name;
};

// Fields shared by both generation routes.
struct GenerationParams {
  std::string model;
  SamplerParams sampling;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // extension
  int finish_after = -1;  // extension "grammar_finish_after": steer the grammar to its end after N tokens
  ResponseFormat response_format;
};

struct ChatRequest {
  GenerationParams p;
  OrderedJson messages = OrderedJson::array();          // [{role, content: string}], roles checked
  OrderedJson template_kwargs = OrderedJson::object();  // extension "chat_template_kwargs"
};

struct CompletionRequest {
  GenerationParams p;
  std::vector<std::string> prompts;  // text prompts, or
  std::vector<std::vector<int64_t>>
      prompt_ids;  // token-id prompts (ids checked against the vocabulary later)
};

// The deepest nesting of arrays/objects in j (iterative: safe on hostile input).
int json_depth(const OrderedJson& j);

std::optional<ApiError> parse_chat_request(const OrderedJson& body, ChatRequest* out);
std::optional<ApiError> parse_completion_request(const OrderedJson& body, int max_prompts,
                                                 CompletionRequest* out);

}  // namespace tailor::api
