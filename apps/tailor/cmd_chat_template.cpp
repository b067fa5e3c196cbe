// tailor chat-template: renders a model's chat template for a conversation and prints the prompt exactly.
#include <cstdio>
#include <cstdlib>

#include "command.h"
#include "core/json.h"
#include "core/mmap.h"
#include "tokenizer/chat_template/chat_template.h"

namespace tailor::cli {
namespace {

const char* kUsage =
    "usage: tailor chat-template PATH --messages FILE.json [--add-generation-prompt] [--tools FILE.json]\n"
    "                            [--template FILE.jinja] [--name NAME] [--vars JSON] [--now "
    "EPOCH_SECONDS]\n\n"
    "Renders the chat template of the model folder PATH (tokenizer_config.json or chat_template.jinja) for "
    "the\n"
    "conversation in --messages (a JSON list of {role, content, ...}, or an object with a \"messages\" list) "
    "and\n"
    "prints the prompt on stdout exactly, with nothing added. The context is the one transformers'\n"
    "apply_chat_template builds: special tokens, messages, tools, add_generation_prompt.\n\n"
    "  --add-generation-prompt  end with the assistant header, ready for the model to answer\n"
    "  --tools FILE.json        tool schemas (a JSON list) passed to the template as `tools`\n"
    "  --template FILE.jinja    use this template instead of the model's\n"
    "  --name NAME              pick a named template (e.g. tool_use) when the model has several\n"
    "  --vars JSON              extra template variables, e.g. '{\"enable_thinking\": false}'\n"
    "  --now EPOCH_SECONDS      the time strftime_now() sees (default: now)";

Result<OrderedJson> read_ordered(const std::string& path) {
  TAILOR_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_ordered_json(text, path);
}

int run(const std::vector<std::string>& argv) {
  auto parsed =
      Args::parse(argv, {"messages", "tools", "template", "name", "vars", "now"}, {"add-generation-prompt"});
  if (!parsed.ok()) return usage_error("chat-template", parsed.status().message());
  const Args& args = *parsed;
  if (args.positional().size() != 1) return usage_error("chat-template", "expected one model folder PATH");
  if (!args.has("messages")) return usage_error("chat-template", "--messages FILE.json is required");
  const std::string dir = args.positional()[0];

  auto messages = read_ordered(*args.get("messages"));
  if (!messages.ok()) return fail(messages.status());
  OrderedJson msgs = *messages;
  if (msgs.is_object() && msgs.contains("messages")) msgs = msgs["messages"];
  if (!msgs.is_array())
    return fail(invalid_argument(*args.get("messages") + ": expected a JSON list of messages"));

  std::optional<OrderedJson> tools;
  if (args.has("tools")) {
    auto t = read_ordered(*args.get("tools"));
    if (!t.ok()) return fail(t.status());
    if (!t->is_array()) return fail(invalid_argument(*args.get("tools") + ": expected a JSON list of tools"));
    tools = *t;
  }
  std::optional<OrderedJson> vars;
  if (args.has("vars")) {
    auto v = parse_ordered_json(*args.get("vars"), "--vars");
    if (!v.ok()) return fail(v.status());
    if (!v->is_object()) return usage_error("chat-template", "--vars must be a JSON object");
    vars = *v;
  }
  auto now = args.get_int("now", -1);
  if (!now.ok()) return usage_error("chat-template", now.status().message());

  auto cfg = load_chat_template_config(dir);
  if (!cfg.ok()) return fail(cfg.status());
  std::string source;
  if (args.has("template")) {
    auto text = read_file(*args.get("template"));
    if (!text.ok()) return fail(text.status());
    source = *text;
  } else {
    auto selected = cfg->select(tools.has_value(), args.get_or("name", ""));
    if (!selected.ok()) return fail(selected.status().with_context(dir + ": "));
    source = *selected;
  }
  auto tmpl = ChatTemplate::parse(source);
  if (!tmpl.ok()) return fail(tmpl.status());
  ChatTemplateOptions opt;
  if (*now >= 0) opt.now = static_cast<std::time_t>(*now);
  OrderedJson ctx = make_chat_context(*cfg, msgs, tools ? &*tools : nullptr,
                                      args.has("add-generation-prompt"), vars ? &*vars : nullptr);
  auto text = tmpl->render(ctx, opt);
  if (!text.ok()) return fail(text.status());
  std::fwrite(text->data(), 1, text->size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

TAILOR_COMMAND(chat_template, "chat-template", "render a model's chat template for a conversation", kUsage,
               run);

}  // namespace tailor::cli
