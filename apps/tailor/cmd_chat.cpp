// tailor chat: a conversation on the terminal (or piped: one user turn per input line), rendered with the
// model's own chat template.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "command.h"
#include "core/json.h"
#include "engine/generate.h"
#include "sampling_flags.h"
#include "tokenizer/chat_template/chat_template.h"

namespace tailor::cli {

static int run_chat(const std::vector<std::string>& argv) {
  std::vector<std::string> vf = {"system", "max-tokens"};
  vf.insert(vf.end(), kSamplingFlags.begin(), kSamplingFlags.end());
  vf.insert(vf.end(), kLoadFlags.begin(), kLoadFlags.end());
  auto a = Args::parse(argv, vf, {"quiet"});
  if (!a.ok()) return usage_error("chat", a.status().message());
  if (a->positional().size() != 1) return usage_error("chat", "expected exactly one MODEL folder");
  auto sp = sampling_from_args(*a);
  if (!sp.ok()) return usage_error("chat", sp.status().message());
  auto lo = load_options_from_args(*a);
  if (!lo.ok()) return usage_error("chat", lo.status().message());
  auto max_tokens = a->get_int("max-tokens", 512);
  if (!max_tokens.ok() || *max_tokens < 0)
    return usage_error("chat", "--max-tokens must be a non-negative integer");
  const std::string dir = a->positional()[0];
  const bool quiet = a->has("quiet");
  lo->need_tokenizer = true;
  lo->verbose = !quiet;
  if (!a->has("ctx")) {
    auto spec = load_model_spec(dir);
    if (!spec.ok()) return fail(spec.status());
    lo->runner.n_ctx = std::min(lo->runner.n_ctx, spec->hp.max_position_embeddings);
  }
  auto cfg = load_chat_template_config(dir);
  if (!cfg.ok()) return fail(cfg.status());
  auto src = cfg->select(false);
  if (!src.ok()) return fail(src.status().with_context(dir + ": "));
  auto tmpl = ChatTemplate::parse(*src);
  if (!tmpl.ok()) return fail(tmpl.status().with_context(dir + ": chat template: "));
  auto m = load_model(dir, *lo);
  if (!m.ok()) return fail(m.status());

  OrderedJson messages = OrderedJson::array();
  if (auto s = a->get("system")) messages.push_back({{"role", "system"}, {"content", *s}});
  const bool tty = isatty(STDIN_FILENO);
  if (tty && !quiet)
    std::fprintf(stderr, "tailor chat: /reset clears the conversation, /exit or Ctrl-D quits\n");
  std::string line;
  GenerateOptions go;
  go.sampling = *sp;
  go.max_new_tokens = int(*max_tokens);
  go.stop_ids = m->stop_ids;
  for (;;) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages = OrderedJson::array();
      if (auto s = a->get("system")) messages.push_back({{"role", "system"}, {"content", *s}});
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    auto prompt_text = tmpl->render(make_chat_context(*cfg, messages, nullptr, true));
    if (!prompt_text.ok()) return fail(prompt_text.status().with_context("chat template: "));
    // The template writes the special tokens (BOS, <|im_start|>) itself.
    auto ids =
        m->tokenizer->encode(*prompt_text, EncodeOptions{.add_special_tokens = false, .parse_special = true});
    if (!ids.ok()) return fail(ids.status());
    StreamDecoder dec(*m->tokenizer, /*skip_special_tokens=*/true);
    std::string reply;
    auto r = generate(*m->runner, 0, *ids, go, nullptr, [&](int32_t id) {
      std::string s = dec.push(id);
      reply += s;
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    if (!r.ok()) return fail(r.status());
    std::string tail = dec.flush();
    reply += tail;
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    if (!quiet)
      std::fprintf(stderr, "tailor: %zu tokens, %.2f tok/s, finish: %s\n", r->tokens.size(),
                   r->tokens.empty() ? 0.0 : double(r->tokens.size()) / (r->decode_ms / 1e3),
                   finish_reason_name(r->finish));
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
  return 0;
}

TAILOR_COMMAND(
    chat, "chat", "chat with a model on the terminal (its own chat template)",
    std::string("usage: tailor chat MODEL [--system TEXT] [--max-tokens N] [flags]\n\n"
                "Reads user turns from stdin (one per line when piped), renders the conversation with the\n"
                "model's chat template and streams each reply to stdout. /reset clears the conversation,\n"
                "/exit quits.\n"
                "  --system TEXT        a system message before the first turn\n"
                "  --max-tokens N       tokens per reply at most [512]\n"
                "  --quiet              no statistics on stderr\n") +
        kSamplingHelp,
    run_chat);

}  // namespace tailor::cli
