#include "tokenizer/chat_template/chat_template.h"

#include <filesystem>
#include <new>

#include "core/json.h"
#include "core/mmap.h"
#include "tokenizer/chat_template/interpreter.h"
#include "tokenizer/chat_template/lexer.h"
#include "tokenizer/chat_template/parser.h"

namespace tailor {

using chat_template::Kind;
using chat_template::Program;
using chat_template::TemplateError;
using chat_template::Value;

namespace {

std::string where(const std::string& src, size_t pos) {
  int line, col;
  chat_template::line_col(src, pos, &line, &col);
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

template <class J>
Value to_value(const J& j, int depth) {
  if (depth > chat_template::kMaxValueDepth)
    chat_template::fail("the context nests deeper than " + std::to_string(chat_template::kMaxValueDepth) +
                        " levels");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::floating(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::floating(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::string(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (auto& x : j) items.push_back(to_value(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      chat_template::Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), to_value(it.value(), depth + 1));
      return chat_template::make_dict(std::move(d));
    }
    default:
      return Value::none();
  }
}

template <class J>
Result<std::string> render_impl(const Program& prog, const J& context, const ChatTemplateOptions& opt) {
  if (!context.is_object())
    return invalid_argument(std::string("chat template context must be a JSON object, got ") +
                            context.type_name());
  chat_template::Limits limits;
  limits.max_output_bytes = opt.max_output_bytes;
  limits.max_steps = opt.max_steps;
  limits.max_depth = opt.max_depth;
  chat_template::Interpreter in(prog, limits, opt.now);
  try {
    Value ctx = to_value(context, 0);
    return in.render(ctx);
  } catch (const TemplateError& e) {
    size_t pos = e.pos == TemplateError::npos ? in.pos() : e.pos;
    if (e.raised)
      return invalid_argument("chat template raised an exception at " + where(prog.source, pos) + ": " +
                              e.message);
    return invalid_argument("chat template error at " + where(prog.source, pos) + ": " + e.message);
  } catch (const std::bad_alloc&) {
    return out_of_memory("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template: unexpected error while rendering: ") + e.what());
  }
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  std::unique_ptr<Program> prog;
  try {
    prog = chat_template::parse_program(source);
  } catch (const TemplateError& e) {
    std::string src = chat_template::normalize_source(source);
    return invalid_argument("chat template syntax error at " + where(src, e.pos) + ": " + e.message);
  } catch (const std::bad_alloc&) {
    return out_of_memory("chat template: out of memory while parsing");
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template: unexpected error while parsing: ") + e.what());
  }
  ChatTemplate t;
  t.prog_ = std::move(prog);
  return t;
}

Result<std::string> ChatTemplate::render(const OrderedJson& context, const ChatTemplateOptions& opt) const {
  if (!prog_) return invalid_argument("chat template: render() on a template that was never parsed");
  return render_impl(*prog_, context, opt);
}

Result<std::string> ChatTemplate::render(const Json& context, const ChatTemplateOptions& opt) const {
  if (!prog_) return invalid_argument("chat template: render() on a template that was never parsed");
  return render_impl(*prog_, context, opt);
}

const std::string& ChatTemplate::source() const {
  return prog_->source;
}

// ---- tokenizer_config.json --------------------------------------------------------------------------------

Result<std::string> ChatTemplateConfig::select(bool with_tools, const std::string& name) const {
  auto find = [&](const std::string& n) -> const std::string* {
    for (auto& [k, v] : named_templates)
      if (k == n) return &v;
    return nullptr;
  };
  if (!name.empty()) {
    if (const std::string* t = find(name)) return *t;
    if (name == "default" && !chat_template.empty()) return chat_template;
    std::string names;
    for (auto& [k, _] : named_templates) names += (names.empty() ? "" : ", ") + k;
    return not_found("no chat template named '" + name +
                     "' (the model has: " + (names.empty() ? "none" : names) + ")");
  }
  if (with_tools)
    if (const std::string* t = find("tool_use")) return *t;
  if (!chat_template.empty()) return chat_template;
  if (const std::string* t = find("default")) return *t;
  if (!named_templates.empty())
    return not_found("the model's chat templates have no 'default' entry; pick one by name");
  return not_found(
      "the model has no chat template (tokenizer_config.json has no chat_template and there is no "
      "chat_template.jinja); pass one explicitly");
}

namespace {

// A special token in tokenizer_config.json: "text", {"content": "text", ...}, or null.
Result<std::optional<std::string>> token_text(const Json& cfg, const char* key, const std::string& file) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return std::optional<std::string>(c->get<std::string>());
  }
  return invalid_argument(file + ": \"" + key +
                          "\" must be a string or an object with a \"content\" string, got " +
                          it->type_name());
}

Status read_templates(const Json& value, const std::string& file, ChatTemplateConfig* cfg) {
  if (value.is_null()) return Status::ok_status();
  if (value.is_string()) {
    cfg->chat_template = value.get<std::string>();
    return Status::ok_status();
  }
  if (value.is_array()) {
    for (auto& e : value) {
      if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
          !e["template"].is_string())
        return invalid_argument(
            file + ": each entry of \"chat_template\" must be {\"name\": string, \"template\": string}");
      cfg->named_templates.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
    }
    return Status::ok_status();
  }
  return invalid_argument(file + ": \"chat_template\" must be a string or a list of {name, template}, got " +
                          value.type_name());
}

}  // namespace

Result<ChatTemplateConfig> load_chat_template_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) return not_found(model_dir + ": not a model folder");
  ChatTemplateConfig cfg;
  const std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  const std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
  const std::string json_path = (fs::path(model_dir) / "chat_template.json").string();
  try {
    if (fs::exists(config_path, ec)) {
      TAILOR_ASSIGN_OR_RETURN(Json j, read_json_file(config_path));
      if (!j.is_object()) return invalid_argument(config_path + ": expected a JSON object");
      if (auto it = j.find("chat_template"); it != j.end())
        TAILOR_RETURN_IF_ERROR(read_templates(*it, config_path, &cfg));
      struct {
        const char* key;
        std::optional<std::string>* slot;
      } tokens[] = {{"bos_token", &cfg.bos_token},  {"eos_token", &cfg.eos_token},
                    {"unk_token", &cfg.unk_token},  {"pad_token", &cfg.pad_token},
                    {"sep_token", &cfg.sep_token},  {"cls_token", &cfg.cls_token},
                    {"mask_token", &cfg.mask_token}};
      for (auto& t : tokens) {
        TAILOR_ASSIGN_OR_RETURN(*t.slot, token_text(j, t.key, config_path));
      }
      if (auto it = j.find("additional_special_tokens"); it != j.end() && it->is_array()) {
        for (auto& e : *it) {
          if (e.is_string())
            cfg.additional_special_tokens.push_back(e.get<std::string>());
          else if (e.is_object() && e.contains("content") && e["content"].is_string())
            cfg.additional_special_tokens.push_back(e["content"].get<std::string>());
        }
      }
    } else if (!fs::exists(jinja_path, ec) && !fs::exists(json_path, ec)) {
      return not_found(config_path +
                       ": not found (a model folder needs tokenizer_config.json or chat_template.jinja)");
    }
    if (fs::exists(jinja_path, ec)) {
      TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path));
      cfg.chat_template = std::move(text);
    } else if (cfg.chat_template.empty() && cfg.named_templates.empty() && fs::exists(json_path, ec)) {
      TAILOR_ASSIGN_OR_RETURN(Json j, read_json_file(json_path));
      if (j.is_object() && j.contains("chat_template"))
        TAILOR_RETURN_IF_ERROR(read_templates(j["chat_template"], json_path, &cfg));
    }
  } catch (const std::exception& e) {
    return invalid_argument(model_dir + ": cannot read the chat template configuration: " + e.what());
  }
  return cfg;
}

OrderedJson make_chat_context(const ChatTemplateConfig& cfg, const OrderedJson& messages,
                              const OrderedJson* tools, bool add_generation_prompt,
                              const OrderedJson* extra) {
  OrderedJson ctx = OrderedJson::object();
  const std::pair<const char*, const std::optional<std::string>*> tokens[] = {
      {"bos_token", &cfg.bos_token},  {"eos_token", &cfg.eos_token}, {"unk_token", &cfg.unk_token},
      {"sep_token", &cfg.sep_token},  {"pad_token", &cfg.pad_token}, {"cls_token", &cfg.cls_token},
      {"mask_token", &cfg.mask_token}};
  for (auto& [key, value] : tokens)
    if (*value) ctx[key] = **value;
  if (!cfg.additional_special_tokens.empty())
    ctx["additional_special_tokens"] = cfg.additional_special_tokens;
  ctx["messages"] = messages;
  ctx["tools"] = tools ? *tools : OrderedJson(nullptr);
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (extra && extra->is_object())
    for (auto it = extra->begin(); it != extra->end(); ++it) ctx[it.key()] = it.value();
  return ctx;
}

}  // namespace tailor
