// The validity proof: every schema of tests/data/grammar/schemas, many generations at temperature 1 driven by
// random logits over the real Qwen3 and Llama-3 vocabularies, each output validated by valijson and by
// python-jsonschema. TAILOR_GRAMMAR_FULL=1 runs the 100 generations per schema and vocabulary
// (minutes); the default runs fewer to keep the suite fast.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>

#include "grammar/compiler.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/sample_constrained.h"
#include "grammar_test_util.h"
#include "sample/sampler.h"

namespace tailor::grammar::testing {
namespace {

int generations_per_schema() {
  const char* full = std::getenv("TAILOR_GRAMMAR_FULL");
  return full && std::string(full) == "1" ? 100 : 6;
}

JsonSchemaOptions options_for(const std::string& name) {
  JsonSchemaOptions o;
  // Schemas whose name says so run with flexible whitespace (the rest with the compact default).
  if (name.find("flexible_ws") != std::string::npos) o.flexible_whitespace = true;
  return o;
}

// TAILOR_GRAMMAR_SEED varies the random logits (default 0) for extra coverage.
uint64_t name_seed(const std::string& s) {
  const char* env = std::getenv("TAILOR_GRAMMAR_SEED");
  uint64_t h = 1469598103934665603ull + (env ? std::strtoull(env, nullptr, 10) * 0x9E3779B97F4A7C15ull : 0);
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

void run_suite(const std::string& vocab_name) {
  auto vocab_r = real_vocab(vocab_name);
  ASSERT_TRUE(vocab_r.ok()) << vocab_r.status().message();
  auto vocab = *vocab_r;
  GrammarCompiler compiler(vocab);
  const int n_gen = generations_per_schema();
  std::vector<std::string> names = suite_schema_names();
  ASSERT_GE(names.size(), 40u) << "the suite must hold at least 40 schemas";

  std::vector<PyBatchEntry> batch;
  size_t total = 0, steered_runs = 0, steered_tokens = 0, tokens = 0, valijson_failures = 0;
  std::map<std::string, int> length_finishes;
  double compile_ms_max = 0;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto text = read_text(source_path("tests/data/grammar/schemas/" + name + ".json"));
    ASSERT_TRUE(text.ok()) << text.status().message();
    auto t0 = std::chrono::steady_clock::now();
    auto cg = compiler.compile_json_schema(*text, options_for(name));
    ASSERT_TRUE(cg.ok()) << name << ": " << cg.status().message();
    compile_ms_max =
        std::max(compile_ms_max,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    // Validators see the JSON Schema meaning of OpenAPI's "nullable" (see openapi_nullable_to_json_schema).
    const std::string validation_schema = openapi_nullable_to_json_schema(*text);
    PyBatchEntry entry{name, validation_schema, {}};
    for (int g = 0; g < n_gen; ++g) {
      SamplerParams sp;
      sp.temperature = 1.0f;
      sp.seed = name_seed(name) + uint64_t(g);
      Sampler sampler(sp);
      GrammarMatcher m(*cg);
      ConstrainedOptions opt;
      opt.max_tokens = 512;
      opt.finish_after = 64;
      auto gen = sample_constrained(m, sampler, random_logits(sp.seed * 31 + 7), vocab->size(), opt);
      ASSERT_TRUE(gen.ok()) << gen.status().message();
      ++total;
      tokens += gen->tokens.size();
      if (gen->steered) ++steered_runs, steered_tokens += size_t(gen->steered);
      if (gen->finish != FinishReason::stop) {
        ++length_finishes[name];
        continue;  // reported below; an unfinished value is not counted as valid
      }
      EXPECT_TRUE(m.is_terminated());
      std::string err = valijson_error(validation_schema, gen->text);
      if (!err.empty()) {
        ++valijson_failures;
        ADD_FAILURE() << "valijson rejects output of " << name << ": " << err << "\n" << gen->text;
      }
      entry.outputs.push_back(gen->text);
    }
    batch.push_back(std::move(entry));
  }
  size_t py_checked = 0;
  auto py = python_validate(batch, &py_checked);
  ASSERT_TRUE(py.ok()) << py.status().message();
  for (const PyFailure& f : *py)
    ADD_FAILURE() << "python-jsonschema rejects output of " << f.name << ": " << f.error << "\n" << f.output;
  for (const auto& [name, n] : length_finishes)
    ADD_FAILURE() << name << ": " << n << " generations hit max_tokens";
  std::printf(
      "[%s] %zu schemas x %d generations = %zu outputs; valijson failures %zu, python-jsonschema checked %zu "
      "failures "
      "%zu; finished by the 512-token cap: %zu; runs steered to finish after 64 tokens: %zu (%zu of %zu "
      "tokens); "
      "slowest compile %.1f ms\n",
      vocab_name.c_str(), names.size(), n_gen, total, valijson_failures, py_checked, py->size(),
      [&] {
        size_t n = 0;
        for (const auto& kv : length_finishes) n += size_t(kv.second);
        return n;
      }(),
      steered_runs, steered_tokens, tokens, compile_ms_max);
  EXPECT_EQ(
      py_checked, total - [&] {
        size_t n = 0;
        for (const auto& kv : length_finishes) n += size_t(kv.second);
        return n;
      }());
}

TEST(GrammarSchemaSuite, Qwen3RandomLogitsAllValid) {
  run_suite("qwen3");
}
TEST(GrammarSchemaSuite, Llama3RandomLogitsAllValid) {
  run_suite("llama3");
}

}  // namespace
}  // namespace tailor::grammar::testing
