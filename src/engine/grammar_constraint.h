// Structured output for server requests: a JSON Schema (or "any JSON object") compiled against the model's
// vocabulary by the grammar module's compiler (which caches compiled grammars), and a per-request matcher
// wrapped as the engine's FinishingConstraint. Compilation runs on the calling (HTTP) thread, never on the
// engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/request.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

namespace grammar {
class GrammarCompiler;
}

class GrammarFactory {
 public:
  // `eos_ids` end generation; the grammar allows them exactly where the document may end. n_vocab: the
  // model's vocabulary size (may exceed the tokenizer's).
  GrammarFactory(const Tokenizer& tokenizer, std::vector<int32_t> eos_ids, int32_t n_vocab);
  ~GrammarFactory();

  // A constraint whose every completion is a JSON document valid against `schema_json`. Errors (invalid JSON,
  // unsupported keyword, ...) name the offending part of the schema.
  Result<std::unique_ptr<FinishingConstraint>> json_schema(std::string_view schema_json);
  // Any JSON object (response_format {"type": "json_object"}).
  Result<std::unique_ptr<FinishingConstraint>> json_object();

  struct Stats {
    uint64_t hits = 0, misses = 0;
    size_t cached = 0;
  };
  Stats stats() const;

 private:
  Result<grammar::GrammarCompiler*> compiler();  // built on first use: the vocabulary trie takes a moment

  const Tokenizer& tok_;
  std::vector<int32_t> eos_;
  int32_t n_vocab_;
  mutable std::mutex mu_;
  std::unique_ptr<grammar::GrammarCompiler> compiler_;
};

}  // namespace tailor
