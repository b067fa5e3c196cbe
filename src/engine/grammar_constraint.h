// Structured output for requests: a JSON Schema (or "any JSON object") becomes a grammar compiled against the
// model's vocabulary once, kept in a small LRU cache, and each request gets its own matcher over it.
// Compilation runs on the calling (HTTP) thread, never on the engine thread.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/request.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

namespace grammar {
class CompiledGrammar;
class Vocabulary;
}  // namespace grammar

class GrammarFactory {
 public:
  // `eos_ids` end generation; the grammar allows them exactly where the document may end.
  GrammarFactory(const Tokenizer& tokenizer, std::vector<int32_t> eos_ids, size_t cache_capacity = 32);
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
  Result<std::shared_ptr<const grammar::Vocabulary>> vocab();
  Result<std::shared_ptr<const grammar::CompiledGrammar>> compiled(const std::string& key,
                                                                   std::string_view schema_json,
                                                                   bool strict_additional);

  const Tokenizer& tok_;
  std::vector<int32_t> eos_;
  size_t capacity_;
  std::mutex vocab_mu_;
  std::shared_ptr<const grammar::Vocabulary> vocab_;
  mutable std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<const grammar::CompiledGrammar>>> lru_;  // front = newest
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace tailor
