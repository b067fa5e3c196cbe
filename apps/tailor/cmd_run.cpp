// tailor run: generate from a prompt; the text alone goes to stdout, statistics to stderr.
#include <cstdio>
#include <sstream>

#include "command.h"
#include "core/mmap.h"
#include "engine/generate.h"
#include "engine/grammar_support.h"
#include "sampling_flags.h"

namespace tailor::cli {

static Result<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > INT32_MAX)
      return invalid_argument(cat("--prompt-ids: '", item, "' is not a token id (expected e.g. 1,2,3)"));
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) return invalid_argument("--prompt-ids is empty");
  return ids;
}

static int run_run(const std::vector<std::string>& argv) {
  std::vector<std::string> vf = {"prompt", "prompt-ids", "max-tokens",          "json-schema",
                                 "regex",  "grammar",    "grammar-finish-after"};
  vf.insert(vf.end(), kSamplingFlags.begin(), kSamplingFlags.end());
  vf.insert(vf.end(), kLoadFlags.begin(), kLoadFlags.end());
  auto a = Args::parse(argv, vf, {"ignore-eos", "ids", "quiet"});
  if (!a.ok()) return usage_error("run", a.status().message());
  if (a->positional().size() != 1) return usage_error("run", "expected exactly one MODEL folder");
  if (a->has("prompt") == a->has("prompt-ids"))
    return usage_error("run", "give either --prompt TEXT or --prompt-ids 1,2,3");
  auto sp = sampling_from_args(*a);
  if (!sp.ok()) return usage_error("run", sp.status().message());
  auto lo = load_options_from_args(*a);
  if (!lo.ok()) return usage_error("run", lo.status().message());
  auto max_tokens = a->get_int("max-tokens", 128);
  if (!max_tokens.ok() || *max_tokens < 0)
    return usage_error("run", "--max-tokens must be a non-negative integer");
  ConstraintSpec cs;
  int n_constraints = a->has("json-schema") + a->has("regex") + a->has("grammar");
  if (n_constraints > 1) return usage_error("run", "give at most one of --json-schema, --regex, --grammar");
  if (auto f = a->get("json-schema")) {
    auto text = read_file(*f);
    if (!text.ok()) return fail(text.status());
    cs = {ConstraintSpec::Kind::json_schema, *text};
  } else if (auto r = a->get("regex")) {
    cs = {ConstraintSpec::Kind::regex, *r};
  } else if (auto f = a->get("grammar")) {
    auto text = read_file(*f);
    if (!text.ok()) return fail(text.status());
    cs = {ConstraintSpec::Kind::grammar, *text};
  }
  auto finish_after = a->get_int("grammar-finish-after", -1);
  if (!finish_after.ok() || *finish_after < -1 || *finish_after > INT32_MAX)
    return usage_error("run", "--grammar-finish-after must be a non-negative integer");
  if (a->has("grammar-finish-after") && n_constraints == 0)
    return usage_error("run", "--grammar-finish-after needs --json-schema, --regex or --grammar");
  lo->need_tokenizer = a->has("prompt") || n_constraints > 0;
  lo->verbose = !a->has("quiet");
  if (!a->has("dtype"))
    lo->runner.weight_dtype = DType::f32;  // placeholder, replaced below by the stored dtype

  // Keep weights in their stored dtype unless --dtype says otherwise (never a whole-model upcast).
  {
    auto spec = load_model_spec(a->positional()[0]);
    if (!spec.ok()) return fail(spec.status());
    if (!a->has("dtype")) lo->runner.weight_dtype = spec->weights->find("model.embed_tokens.weight")->dtype;
    lo->runner.n_ctx = std::min(lo->runner.n_ctx, spec->hp.max_position_embeddings);
  }
  auto m = load_model(a->positional()[0], *lo);
  if (!m.ok()) return fail(m.status());
  const bool quiet = a->has("quiet");
  if (!quiet) std::fprintf(stderr, "tailor: %s\n", m->runner->describe().c_str());

  std::vector<int32_t> prompt;
  if (a->has("prompt")) {
    auto ids = m->tokenizer->encode(*a->get("prompt"));
    if (!ids.ok()) return fail(ids.status());
    prompt = *ids;
  } else {
    auto ids = parse_ids(*a->get("prompt-ids"));
    if (!ids.ok()) return usage_error("run", ids.status().message());
    prompt = *ids;
  }

  std::unique_ptr<grammar::GrammarMatcher> matcher;
  if (cs.kind != ConstraintSpec::Kind::none) {
    auto vocab = grammar_vocabulary(*m->tokenizer, m->stop_ids, m->spec->hp.n_vocab);
    if (!vocab.ok()) return fail(vocab.status());
    grammar::GrammarCompiler compiler(*vocab);
    auto mm = make_matcher(compiler, cs);
    if (!mm.ok()) return fail(mm.status());
    matcher = std::move(mm).value();
  }

  GenerateOptions go;
  go.sampling = *sp;
  go.max_new_tokens = int(*max_tokens);
  go.stop_ids = m->stop_ids;
  go.ignore_eos = a->has("ignore-eos");
  go.finish_after = int(*finish_after);
  const bool print_ids = a->has("ids") || !m->tokenizer;
  std::unique_ptr<StreamDecoder> dec;
  if (!print_ids) dec = std::make_unique<StreamDecoder>(*m->tokenizer, /*skip_special_tokens=*/false);
  bool first = true;
  auto r = generate(*m->runner, 0, prompt, go, matcher.get(), [&](int32_t id) {
    if (print_ids) {
      std::printf(first ? "%d" : " %d", id);
    } else {
      std::string s = dec->push(id);
      std::fwrite(s.data(), 1, s.size(), stdout);
    }
    first = false;
    std::fflush(stdout);
    return true;
  });
  if (!r.ok()) return fail(r.status());
  if (dec) {
    std::string s = dec->flush();
    std::fwrite(s.data(), 1, s.size(), stdout);
  }
  std::printf("\n");
  std::fflush(stdout);  // the text ends before the statistics line on a shared terminal
  if (matcher && r->finish != FinishReason::stop)
    std::fprintf(stderr,
                 "tailor: warning: the constrained output is incomplete (finish: %s): raise --max-tokens\n",
                 finish_reason_name(r->finish));
  if (!quiet) {
    const double n = double(r->tokens.size());
    std::fprintf(
        stderr,
        "tailor: prompt %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.2f tok/s); "
        "finish: %s; peak RSS %.1f MB\n",
        r->n_prompt, r->prompt_ms, r->n_prompt / (r->prompt_ms / 1e3), int(n), r->decode_ms,
        n > 0 ? n / (r->decode_ms / 1e3) : 0.0, finish_reason_name(r->finish),
        double(peak_rss_bytes()) / 1e6);
  }
  return 0;
}

TAILOR_COMMAND(
    run, "run", "generate text (or token ids) from a prompt",
    std::string("usage: tailor run MODEL (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N] [flags]\n\n"
                "Generated text streams to stdout (token ids with --ids or when the model has no\n"
                "tokenizer); speed and memory go to stderr.\n"
                "  --max-tokens N       tokens to generate at most [128]\n"
                "  --ignore-eos         keep generating past end-of-sequence tokens\n"
                "  --quiet              no statistics on stderr\n"
                "structured output (the output is valid by construction; at most one of):\n"
                "  --json-schema FILE   a JSON document valid against this JSON Schema\n"
                "  --regex R            text matching the regular expression R (whole output)\n"
                "  --grammar FILE       text of a GBNF-like grammar (rules `name ::= ...`, start: root)\n"
                "  --grammar-finish-after N  after N tokens, steer to the shortest valid end (for weak or\n"
                "                       random-weight models that would not close a string) [off]\n"
                "  An output cut by --max-tokens is incomplete: finish \"length\" and a warning.\n") +
        kSamplingHelp,
    run_run);

}  // namespace tailor::cli
