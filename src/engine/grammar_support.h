// Glue between a loaded model and the grammar module: the grammar's view of the vocabulary (token bytes, EOS
// ids, special tokens a grammar may never emit) and one compiler (with its LRU cache) per model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grammar/compiler.h"
#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

// stop_ids become the grammar's end-of-sequence tokens; other special tokens are excluded.
Result<std::shared_ptr<const grammar::Vocabulary>> grammar_vocabulary(const Tokenizer& tok,
                                                                      const std::vector<int32_t>& stop_ids,
                                                                      int32_t n_vocab);

// What the user constrains output with (CLI --json-schema/--regex/--grammar, server response_format).
struct ConstraintSpec {
  enum class Kind { none, json_schema, regex, grammar } kind = Kind::none;
  std::string source;  // the schema JSON, the pattern, or the grammar text
};

// Compiles (cached) and returns a fresh matcher for one sequence, or nullptr for Kind::none.
Result<std::unique_ptr<grammar::GrammarMatcher>> make_matcher(grammar::GrammarCompiler& compiler,
                                                              const ConstraintSpec& spec);

}  // namespace tailor
