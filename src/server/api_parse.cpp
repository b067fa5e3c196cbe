#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "server/api.h"

namespace tailor::api {

OrderedJson error_json(const ApiError& e) {
  OrderedJson err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? OrderedJson() : OrderedJson(e.param);
  err["code"] = e.code.empty() ? OrderedJson() : OrderedJson(e.code);
  return {{"error", err}};
}

ApiError bad_field(const std::string& param, const std::string& message, const std::string& code) {
  ApiError e;
  e.status = 400;
  e.message = message;
  e.param = param;
  e.code = code;
  return e;
}

int json_depth(const OrderedJson& j) {
  int best = 0;
  std::vector<std::pair<const OrderedJson*, int>> stack{{&j, 1}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    best = std::max(best, d);
    for (const auto& c : *v) stack.push_back({&c, d + 1});
  }
  return best;
}

namespace {

const char* type_name(const OrderedJson& j) {
  switch (j.type()) {
    case OrderedJson::value_t::null:
      return "null";
    case OrderedJson::value_t::boolean:
      return "boolean";
    case OrderedJson::value_t::number_integer:
    case OrderedJson::value_t::number_unsigned:
      return "integer";
    case OrderedJson::value_t::number_float:
      return "number";
    case OrderedJson::value_t::string:
      return "string";
    case OrderedJson::value_t::array:
      return "array";
    case OrderedJson::value_t::object:
      return "object";
    default:
      return "value";
  }
}

ApiError wrong_type(const std::string& name, const char* want, const OrderedJson& got) {
  return bad_field(name, cat("'", name, "' must be ", want, ", got ", type_name(got)), "invalid_type");
}

// Reads an optional field; absent and null both mean "not given".
const OrderedJson* field(const OrderedJson& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> get_number(const OrderedJson& body, const char* name, double lo, double hi,
                                   std::optional<double>* out) {
  const OrderedJson* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) return wrong_type(name, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    return bad_field(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", v->dump()),
                     "out_of_range");
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> get_int(const OrderedJson& body, const char* name, int64_t lo, int64_t hi,
                                std::optional<int64_t>* out) {
  const OrderedJson* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) return wrong_type(name, "an integer", *v);
  bool in_range;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    in_range = u <= uint64_t(hi) && (lo <= 0 || u >= uint64_t(lo));
    x = in_range ? int64_t(u) : 0;
  } else {
    x = v->get<int64_t>();
    in_range = x >= lo && x <= hi;
  }
  if (!in_range)
    return bad_field(name, cat("'", name, "' must be between ", lo, " and ", hi, ", got ", v->dump()),
                     "out_of_range");
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const OrderedJson& body, const char* name, bool* out) {
  const OrderedJson* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(name, "true or false", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

// A field we do not implement: fine when absent, null or the value that means "off"; else 400 naming it.
std::optional<ApiError> unsupported_unless(const OrderedJson& body, const char* name, bool harmless,
                                           const std::string& why) {
  if (!field(body, name) || harmless) return std::nullopt;
  return bad_field(name, cat("'", name, "' is not supported by this server: ", why), "unsupported_parameter");
}

bool is_empty_container(const OrderedJson* v) {
  return !v || ((v->is_array() || v->is_object()) && v->empty());
}

std::optional<ApiError> parse_response_format(const OrderedJson& body, ResponseFormat* out) {
  const OrderedJson* rf = field(body, "response_format");
  if (!rf) return std::nullopt;
  if (!rf->is_object()) return wrong_type("response_format", "an object", *rf);
  const OrderedJson* t = field(*rf, "type");
  if (!t) return bad_field("response_format.type", "'response_format.type' is required", "missing_field");
  if (!t->is_string()) return wrong_type("response_format.type", "a string", *t);
  const std::string kind = t->get<std::string>();
  if (kind == "text") {
    out->kind = ResponseFormat::Kind::text;
  } else if (kind == "json_object") {
    out->kind = ResponseFormat::Kind::json_object;
  } else if (kind == "json_schema") {
    out->kind = ResponseFormat::Kind::json_schema;
    const OrderedJson* js = field(*rf, "json_schema");
    if (!js)
      return bad_field("response_format.json_schema",
                       "'response_format.json_schema' is required when type is json_schema", "missing_field");
    if (!js->is_object()) return wrong_type("response_format.json_schema", "an object", *js);
    const OrderedJson* name = field(*js, "name");
    if (!name)
      return bad_field("response_format.json_schema.name", "'response_format.json_schema.name' is required",
                       "missing_field");
    if (!name->is_string()) return wrong_type("response_format.json_schema.name", "a string", *name);
    out->name = name->get<std::string>();
    if (const OrderedJson* strict = field(*js, "strict"); strict && !strict->is_boolean())
      return wrong_type("response_format.json_schema.strict", "true or false", *strict);
    const OrderedJson* schema = field(*js, "schema");
    if (!schema) {
      out->kind = ResponseFormat::Kind::json_object;  // OpenAI: no schema means any JSON object
    } else {
      if (!schema->is_object() && !schema->is_boolean())
        return wrong_type("response_format.json_schema.schema", "an object", *schema);
      out->schema_json = schema->dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
    }
  } else {
    return bad_field("response_format.type",
                     cat("'response_format.type' must be text, json_object or json_schema, got '", kind, "'"),
                     "invalid_value");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_common(const OrderedJson& body, GenerationParams* p, bool chat) {
  const OrderedJson* model = field(body, "model");
  if (!model) return bad_field("model", "'model' is required (GET /v1/models lists it)", "missing_field");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  p->model = model->get<std::string>();

  std::optional<double> d;
  SamplerParams& s = p->sampling;
  s = SamplerParams{};
  s.temperature = 1.0f;   // OpenAI's default
  s.penalty_last_n = -1;  // OpenAI's penalties count the whole output
  if (auto e = get_number(body, "temperature", 0, 2, &d)) return e;
  if (d) s.temperature = float(*d), d.reset();
  if (auto e = get_number(body, "top_p", 0, 1, &d)) return e;
  if (d) {
    if (*d <= 0) return bad_field("top_p", "'top_p' must be greater than 0 and at most 1", "out_of_range");
    s.top_p = float(*d), d.reset();
  }
  if (auto e = get_number(body, "min_p", 0, 1, &d)) return e;
  if (d) s.min_p = float(*d), d.reset();
  if (auto e = get_number(body, "presence_penalty", -2, 2, &d)) return e;
  if (d) s.presence_penalty = float(*d), d.reset();
  if (auto e = get_number(body, "frequency_penalty", -2, 2, &d)) return e;
  if (d) s.frequency_penalty = float(*d), d.reset();
  if (auto e = get_number(body, "repetition_penalty", 0.01, 100, &d)) return e;  // extension
  if (d) s.repetition_penalty = float(*d), d.reset();
  std::optional<int64_t> i;
  if (auto e = get_int(body, "top_k", 0, 1 << 30, &i)) return e;  // extension (vLLM, llama.cpp)
  if (i) s.top_k = int(*i), i.reset();
  if (const OrderedJson* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) return wrong_type("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
  } else {
    s.seed = std::random_device{}();  // no seed: a different sample each time, as OpenAI does
  }
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = get_int(body, name, 1, std::numeric_limits<int32_t>::max(), &i)) return e;
    if (i) p->max_tokens = int(*i), i.reset();
  }
  if (auto e = get_int(body, "n", 1, 1 << 30, &i)) return e;
  if (i && *i != 1)
    return bad_field("n", "'n' > 1 is not supported: send one request per completion",
                     "unsupported_parameter");
  i.reset();
  if (auto e = get_int(body, "grammar_finish_after", 0, std::numeric_limits<int32_t>::max(), &i)) return e;
  if (i) p->finish_after = int(*i), i.reset();

  if (const OrderedJson* stop = field(body, "stop")) {
    auto add = [&](const OrderedJson& v) -> std::optional<ApiError> {
      if (!v.is_string()) return wrong_type("stop", "a string or an array of strings", v);
      std::string x = v.get<std::string>();
      if (x.size() > 1024)
        return bad_field("stop", "each 'stop' string must be at most 1024 bytes", "out_of_range");
      if (!x.empty()) p->stop.push_back(std::move(x));
      return std::nullopt;
    };
    if (stop->is_array()) {
      if (stop->size() > 16) return bad_field("stop", "'stop' takes at most 16 strings", "out_of_range");
      for (const auto& v : *stop)
        if (auto e = add(v)) return e;
    } else if (auto e = add(*stop)) {
      return e;
    }
  }
  if (auto e = get_bool(body, "stream", &p->stream)) return e;
  if (const OrderedJson* so = field(body, "stream_options")) {
    if (!so->is_object()) return wrong_type("stream_options", "an object", *so);
    if (auto e = get_bool(*so, "include_usage", &p->include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  if (auto e = get_bool(body, "ignore_eos", &p->ignore_eos)) return e;
  if (auto e = parse_response_format(body, &p->response_format)) return e;

  // Fields that would change the result and that this server does not implement.
  bool logprobs = false;
  if (const OrderedJson* lp = field(body, "logprobs")) {
    if (chat && !lp->is_boolean()) return wrong_type("logprobs", "true or false", *lp);
    logprobs = chat ? lp->get<bool>() : true;
  }
  if (auto e = unsupported_unless(body, "logprobs", !logprobs, "token log-probabilities are not computed"))
    return e;
  if (auto e = unsupported_unless(body, "top_logprobs", false, "token log-probabilities are not computed"))
    return e;
  if (auto e = unsupported_unless(body, "logit_bias", is_empty_container(field(body, "logit_bias")),
                                  "logit biases are not applied"))
    return e;
  if (auto e = unsupported_unless(body, "best_of", field(body, "best_of") && *field(body, "best_of") == 1,
                                  "one completion per prompt"))
    return e;
  return std::nullopt;
}

// Message content: a string, or an array of {type: "text", text} parts (joined), or null for an assistant
// turn.
std::optional<ApiError> message_text(const OrderedJson& content, const std::string& where, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return wrong_type(where, "a string or an array of content parts", content);
  for (size_t k = 0; k < content.size(); ++k) {
    const OrderedJson& part = content[k];
    const std::string pw = cat(where, "[", k, "]");
    if (!part.is_object()) return wrong_type(pw, "an object", part);
    const OrderedJson* t = field(part, "type");
    if (!t || !t->is_string())
      return bad_field(pw + ".type", cat("'", pw, ".type' must be a string"), "invalid_type");
    if (t->get<std::string>() != "text")
      return bad_field(
          pw + ".type",
          cat("content part type '", t->get<std::string>(), "' is not supported: this model takes text only"),
          "unsupported_content");
    const OrderedJson* text = field(part, "text");
    if (!text || !text->is_string())
      return bad_field(pw + ".text", cat("'", pw, ".text' must be a string"), "invalid_type");
    *out += text->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_chat_request(const OrderedJson& body, ChatRequest* out) {
  if (!body.is_object())
    return bad_field("", cat("the request body must be a JSON object, got ", type_name(body)));
  if (auto e = parse_common(body, &out->p, true)) return e;
  const OrderedJson* tools = field(body, "tools");
  if (auto e =
          unsupported_unless(body, "tools", is_empty_container(tools), "tool calling is not implemented"))
    return e;
  if (const OrderedJson* tc = field(body, "tool_choice");
      tc && !(tc->is_string() && (tc->get<std::string>() == "none" || tc->get<std::string>() == "auto")))
    return bad_field("tool_choice",
                     "'tool_choice' is not supported by this server: tool calling is not implemented",
                     "unsupported_parameter");
  for (const char* f : {"functions", "function_call", "audio", "prediction", "web_search_options"})
    if (auto e = unsupported_unless(body, f, is_empty_container(field(body, f)), "not implemented")) return e;
  if (const OrderedJson* m = field(body, "modalities")) {
    if (!m->is_array()) return wrong_type("modalities", "an array", *m);
    for (const auto& x : *m)
      if (!(x.is_string() && x.get<std::string>() == "text"))
        return bad_field("modalities", "only the \"text\" modality is supported", "unsupported_parameter");
  }
  if (const OrderedJson* kw = field(body, "chat_template_kwargs")) {
    if (!kw->is_object()) return wrong_type("chat_template_kwargs", "an object", *kw);
    out->template_kwargs = *kw;
  }

  const OrderedJson* msgs = field(body, "messages");
  if (!msgs) return bad_field("messages", "'messages' is required", "missing_field");
  if (!msgs->is_array()) return wrong_type("messages", "an array", *msgs);
  if (msgs->empty())
    return bad_field("messages", "'messages' must contain at least one message", "empty_array");
  for (size_t k = 0; k < msgs->size(); ++k) {
    const OrderedJson& m = (*msgs)[k];
    const std::string where = cat("messages[", k, "]");
    if (!m.is_object()) return wrong_type(where, "an object", m);
    const OrderedJson* role = field(m, "role");
    if (!role) return bad_field(where + ".role", cat("'", where, ".role' is required"), "missing_field");
    if (!role->is_string()) return wrong_type(where + ".role", "a string", *role);
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r == "tool" || r == "function")
      return bad_field(where + ".role",
                       cat("role '", r, "' is not supported: tool calling is not implemented"),
                       "unsupported_parameter");
    if (r != "system" && r != "user" && r != "assistant")
      return bad_field(where + ".role",
                       cat("'", where, ".role' must be system, developer, user or assistant, got '", r, "'"),
                       "invalid_value");
    if (!is_empty_container(field(m, "tool_calls")) || field(m, "function_call"))
      return bad_field(where + ".tool_calls", "tool calls are not supported: tool calling is not implemented",
                       "unsupported_parameter");
    std::string text;
    const OrderedJson* content = field(m, "content");
    if (!content) {
      if (r != "assistant")
        return bad_field(where + ".content", cat("'", where, ".content' is required"), "missing_field");
    } else if (auto e = message_text(*content, where + ".content", &text)) {
      return e;
    }
    out->messages.push_back({{"role", r}, {"content", std::move(text)}});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_completion_request(const OrderedJson& body, int max_prompts,
                                                 CompletionRequest* out) {
  if (!body.is_object())
    return bad_field("", cat("the request body must be a JSON object, got ", type_name(body)));
  if (auto e = parse_common(body, &out->p, false)) return e;
  bool echo = false;
  if (auto e = get_bool(body, "echo", &echo)) return e;
  if (auto e = unsupported_unless(body, "echo", !echo, "the prompt is not echoed back")) return e;
  if (const OrderedJson* sfx = field(body, "suffix");
      sfx && !(sfx->is_string() && sfx->get<std::string>().empty()))
    return bad_field("suffix", "'suffix' is not supported by this server: no fill-in-the-middle",
                     "unsupported_parameter");

  const OrderedJson* pr = field(body, "prompt");
  if (!pr) return bad_field("prompt", "'prompt' is required", "missing_field");
  auto ids_of = [&](const OrderedJson& arr, const std::string& where,
                    std::vector<int64_t>* ids) -> std::optional<ApiError> {
    if (arr.empty())
      return bad_field(where, cat("'", where, "' is an empty list of token ids"), "empty_array");
    for (const auto& x : arr) {
      if (!x.is_number_integer()) return wrong_type(where, "an array of token ids", x);
      if (x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max()))
        return bad_field(where, cat("token id ", x.dump(), " is outside the vocabulary"), "invalid_token");
      ids->push_back(x.is_number_unsigned() ? int64_t(x.get<uint64_t>()) : x.get<int64_t>());
    }
    return std::nullopt;
  };
  if (pr->is_string()) {
    out->prompts.push_back(pr->get<std::string>());
  } else if (pr->is_array()) {
    if (pr->empty()) return bad_field("prompt", "'prompt' must not be an empty array", "empty_array");
    const auto& first = (*pr)[0];
    if (first.is_number_integer()) {  // one prompt as token ids
      out->prompt_ids.emplace_back();
      if (auto e = ids_of(*pr, "prompt", &out->prompt_ids.back())) return e;
    } else {
      if (int(pr->size()) > max_prompts)
        return bad_field(
            "prompt", cat("'prompt' holds ", pr->size(), " prompts; at most ", max_prompts, " per request"),
            "too_many_prompts");
      for (size_t k = 0; k < pr->size(); ++k) {
        const auto& x = (*pr)[k];
        const std::string where = cat("prompt[", k, "]");
        if (first.is_string()) {
          if (!x.is_string()) return wrong_type(where, "a string like the other prompts", x);
          out->prompts.push_back(x.get<std::string>());
        } else if (first.is_array()) {
          if (!x.is_array()) return wrong_type(where, "an array of token ids like the other prompts", x);
          out->prompt_ids.emplace_back();
          if (auto e = ids_of(x, where, &out->prompt_ids.back())) return e;
        } else {
          return wrong_type(where, "a string, an array of strings or token ids", x);
        }
      }
    }
  } else {
    return wrong_type("prompt", "a string or an array", *pr);
  }
  return std::nullopt;
}

}  // namespace tailor::api
