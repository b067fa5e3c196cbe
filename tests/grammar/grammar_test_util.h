// Shared helpers for the grammar tests: real vocabularies from the tokenizer module, a byte-level vocabulary
// for language-membership checks, random logits, and the two JSON Schema validators (valijson in-process,
// python3-jsonschema in one batched subprocess).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "grammar/compiled_grammar.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/sample_constrained.h"
#include "grammar/vocab.h"

namespace tailor::grammar::testing {

std::string source_path(const std::string& rel);  // under the repository root

// "qwen3" or "llama3": token bytes from Tokenizer::token_bytes, special tokens excluded, end tokens as EOS.
// Loaded once per process.
Result<std::shared_ptr<const Vocabulary>> real_vocab(const std::string& name);
// 256 single-byte tokens (id = byte) and EOS = 256: every byte string is tokenizable.
std::shared_ptr<const Vocabulary> byte_vocab();

// Compiles g against byte_vocab().
Result<std::shared_ptr<const CompiledGrammar>> compile_bytes(const Grammar& g);
// Whether the grammar's language contains exactly `text`.
bool matches(const std::shared_ptr<const CompiledGrammar>& g, std::string_view text);

// A random string of the grammar's language (byte-level walk; steered to the shortest completion after
// `budget` bytes). Returns false if the walk got stuck (a bug).
bool random_member(const std::shared_ptr<const CompiledGrammar>& g, uint64_t seed, size_t budget,
                   std::string* out);

// Cheap uniform random logits in [0, scale): fast enough for 150k-token vocabularies per step.
LogitsFn random_logits(uint64_t seed, float scale = 8.0f);

// OpenAPI's `"nullable": true` (which tailor honours) is unknown to JSON Schema validators: rewrite it as a
// type list with "null" so that both validators judge the schema as tailor means it. Other schemas are
// unchanged.
std::string openapi_nullable_to_json_schema(const std::string& schema_json);

// Validates `instance_json` against `schema_json` with valijson (draft picked from $schema). Empty = valid.
std::string valijson_error(const std::string& schema_json, const std::string& instance_json);

struct PyBatchEntry {
  std::string name;
  std::string schema_json;
  std::vector<std::string> outputs;
};
struct PyFailure {
  std::string name, output, error;
};
// Runs tests/grammar/validate_json_outputs.py once over all entries.
Result<std::vector<PyFailure>> python_validate(const std::vector<PyBatchEntry>& batch, size_t* checked);

// Schema files of the suite (tests/data/grammar/schemas/*.json), sorted by name.
std::vector<std::string> suite_schema_names();
Result<std::string> read_text(const std::string& path);

// The suite's conventions, shared by the random-logit run and the run through the model:
// generations per schema and vocabulary: the 100 with TAILOR_GRAMMAR_FULL=1, else `default_n`.
int suite_generations(int default_n);
// Schemas whose name says "flexible_ws" run with flexible whitespace, the rest with the compact default.
JsonSchemaOptions suite_schema_options(const std::string& name);
// A seed per schema name; TAILOR_GRAMMAR_SEED (default 0) varies it for extra coverage.
uint64_t suite_seed(const std::string& name);

// The validity bookkeeping of a suite run. Each finished output is checked by valijson at once and by
// python-jsonschema in one batch at the end. A generation that reached its token cap inside an unfinished
// value (finish "length") is counted and reported as a failure, never counted as valid.
class SuiteValidation {
 public:
  // Starts the outputs of one schema; the validators see openapi_nullable_to_json_schema(schema_json).
  void begin_schema(const std::string& name, const std::string& schema_json);
  void add_output(const std::string& text);  // a finished output
  void add_unfinished();                     // finish "length" (or any end that is not "stop")
  // Runs python-jsonschema over all outputs and adds a gtest failure for every invalid output, for every
  // schema with unfinished generations and for any output python did not check.
  void finish();

  size_t generations() const { return generations_; }
  size_t valijson_failures() const { return valijson_failures_; }
  size_t python_checked() const { return python_checked_; }
  size_t python_failures() const { return python_failures_; }
  size_t unfinished() const { return unfinished_; }
  // "N outputs; valijson failures F, python-jsonschema checked C failures P; unfinished (length) U"
  std::string summary() const;

 private:
  std::vector<PyBatchEntry> batch_;
  std::vector<size_t> unfinished_per_schema_;
  size_t generations_ = 0, valijson_failures_ = 0, python_checked_ = 0, python_failures_ = 0, unfinished_ = 0;
};

}  // namespace tailor::grammar::testing
