// Chat templates: Hugging Face `chat_template` strings (a Jinja subset) rendered exactly as transformers'
// apply_chat_template renders them with python jinja2 (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now).
//
//   TAILOR_ASSIGN_OR_RETURN(auto cfg, load_chat_template_config(model_dir));
//   TAILOR_ASSIGN_OR_RETURN(std::string src, cfg.select(/*with_tools=*/false));
//   TAILOR_ASSIGN_OR_RETURN(auto tmpl, ChatTemplate::parse(src));
//   TAILOR_ASSIGN_OR_RETURN(std::string prompt, tmpl.render(make_chat_context(cfg, messages, nullptr,
//   true)));
//
// Errors (syntax, undefined variables, type errors, raise_exception) come back as Status messages that give
// the template line:column and the reason. Rendering never crashes and always ends: output size, work and
// recursion are bounded (ChatTemplateOptions). A parsed ChatTemplate is immutable and may be rendered from
// many threads.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tailor {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

namespace chat_template {
struct Program;
}

struct ChatTemplateOptions {
  size_t max_output_bytes = size_t{64} << 20;  // the rendered text, and any single string built on the way
  uint64_t max_steps = 50'000'000;             // evaluation steps (a real template needs a few per message)
  int max_depth = 1000;                        // nested evaluation frames, macro recursion included
  std::optional<std::time_t> now;              // the clock strftime_now() reads (tests pin it)
};

class ChatTemplate {
 public:
  // Syntax errors say "line L, column C" and why; so do unknown filters and tests outside `if` blocks.
  static Result<ChatTemplate> parse(std::string_view source);

  // `context` is a JSON object whose keys become template variables (messages, tools, add_generation_prompt,
  // bos_token, ...). Prefer the OrderedJson overloads: key order shows in `tojson` output, and Json
  // (std::map) sorts keys where Python would keep the input order.
  Result<std::string> render(const OrderedJson& context, const ChatTemplateOptions& opt = {}) const;
  Result<std::string> render(const Json& context, const ChatTemplateOptions& opt = {}) const;

  // The template source after jinja2's newline normalisation (positions in errors refer to it).
  const std::string& source() const;

 private:
  std::shared_ptr<const chat_template::Program> prog_;
};

// What tokenizer_config.json (or chat_template.jinja / chat_template.json) says about chat formatting.
struct ChatTemplateConfig {
  std::string chat_template;  // the default template; empty when the model ships none
  std::vector<std::pair<std::string, std::string>>
      named_templates;  // `chat_template` given as [{name, template}]
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token, sep_token, cls_token, mask_token;
  std::vector<std::string> additional_special_tokens;

  // The template transformers picks: `name` if given; else "tool_use" when tools are passed and it exists;
  // else "default" (or the single string template). Fails when the model has no chat template.
  Result<std::string> select(bool with_tools, const std::string& name = "") const;
};

// Reads <model_dir>/tokenizer_config.json; chat_template.jinja in the folder takes precedence over the
// config's chat_template, and chat_template.json is used when neither has one. Special tokens may be strings
// or
// {"content": ...} objects.
Result<ChatTemplateConfig> load_chat_template_config(const std::string& model_dir);

// The render context transformers' apply_chat_template builds: the special tokens map (bos_token, eos_token,
// ..., additional_special_tokens; unset tokens are left undefined), then messages, tools (null when absent),
// documents (null) and add_generation_prompt; `extra` keys (e.g. enable_thinking) are added last and
// override.
OrderedJson make_chat_context(const ChatTemplateConfig& cfg, const OrderedJson& messages,
                              const OrderedJson* tools, bool add_generation_prompt,
                              const OrderedJson* extra = nullptr);

}  // namespace tailor
