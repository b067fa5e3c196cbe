// The validity proof: every schema of tests/data/grammar/schemas, many generations at temperature 1 driven by
// random logits over the real Qwen3 and Llama-3 vocabularies, each output validated by valijson and by
// python-jsonschema. TAILOR_GRAMMAR_FULL=1 runs the 100 generations per schema and vocabulary
// (minutes); the default runs fewer to keep the suite fast.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "grammar/compiler.h"
#include "grammar/matcher.h"
#include "grammar/sample_constrained.h"
#include "grammar_test_util.h"
#include "sample/sampler.h"

namespace tailor::grammar::testing {
namespace {

void run_suite(const std::string& vocab_name) {
  auto vocab_r = real_vocab(vocab_name);
  ASSERT_TRUE(vocab_r.ok()) << vocab_r.status().message();
  auto vocab = *vocab_r;
  GrammarCompiler compiler(vocab);
  const int n_gen = suite_generations(6);
  std::vector<std::string> names = suite_schema_names();
  ASSERT_GE(names.size(), 40u) << "the suite must hold at least 40 schemas";

  SuiteValidation check;
  size_t steered_runs = 0, steered_tokens = 0, tokens = 0;
  double compile_ms_max = 0;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto text = read_text(source_path("tests/data/grammar/schemas/" + name + ".json"));
    ASSERT_TRUE(text.ok()) << text.status().message();
    auto t0 = std::chrono::steady_clock::now();
    auto cg = compiler.compile_json_schema(*text, suite_schema_options(name));
    ASSERT_TRUE(cg.ok()) << name << ": " << cg.status().message();
    compile_ms_max =
        std::max(compile_ms_max,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    check.begin_schema(name, *text);
    for (int g = 0; g < n_gen; ++g) {
      SamplerParams sp;
      sp.temperature = 1.0f;
      sp.seed = suite_seed(name) + uint64_t(g);
      Sampler sampler(sp);
      GrammarMatcher m(*cg);
      ConstrainedOptions opt;
      opt.max_tokens = 512;
      opt.finish_after = 64;
      auto gen = sample_constrained(m, sampler, random_logits(sp.seed * 31 + 7), vocab->size(), opt);
      ASSERT_TRUE(gen.ok()) << gen.status().message();
      tokens += gen->tokens.size();
      if (gen->steered) ++steered_runs, steered_tokens += size_t(gen->steered);
      if (gen->finish != FinishReason::stop) {
        check.add_unfinished();  // reported by finish(); an unfinished value is not counted as valid
        continue;
      }
      EXPECT_TRUE(m.is_terminated());
      check.add_output(gen->text);
    }
  }
  check.finish();
  std::printf(
      "[%s] %zu schemas x %d generations = %s; runs steered to finish after 64 tokens: %zu (%zu of %zu "
      "tokens); slowest compile %.1f ms\n",
      vocab_name.c_str(), names.size(), n_gen, check.summary().c_str(), steered_runs, steered_tokens, tokens,
      compile_ms_max);
}

TEST(GrammarSchemaSuite, Qwen3RandomLogitsAllValid) {
  run_suite("qwen3");
}
TEST(GrammarSchemaSuite, Llama3RandomLogitsAllValid) {
  run_suite("llama3");
}

}  // namespace
}  // namespace tailor::grammar::testing
