// Compile once per (grammar, vocabulary): the front ends (JSON Schema, regex, grammar text) plus an LRU cache
// of compiled grammars keyed by the source text and options. Thread-safe; one compiler per vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"
#include "grammar/compiled_grammar.h"
#include "grammar/json_schema.h"
#include "grammar/regex.h"

namespace tailor::grammar {

class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::shared_ptr<const Vocabulary> vocab, size_t capacity = 64);

  Result<std::shared_ptr<const CompiledGrammar>> compile_json_schema(std::string_view schema_json,
                                                                     const JsonSchemaOptions& opt = {});
  Result<std::shared_ptr<const CompiledGrammar>> compile_regex(std::string_view pattern,
                                                               const RegexOptions& opt = {});
  Result<std::shared_ptr<const CompiledGrammar>> compile_grammar_text(std::string_view text);
  Result<std::shared_ptr<const CompiledGrammar>> compile(const Grammar& g);

  struct CacheStats {
    uint64_t hits = 0, misses = 0;
    size_t entries = 0;
  };
  CacheStats cache_stats() const;
  const std::shared_ptr<const Vocabulary>& vocab() const { return vocab_; }

 private:
  Result<std::shared_ptr<const CompiledGrammar>> cached(const std::string& key,
                                                        const std::function<Result<Grammar>()>& make);

  std::shared_ptr<const Vocabulary> vocab_;
  size_t capacity_;
  mutable std::mutex mu_;
  using Entry = std::pair<std::string, std::shared_ptr<const CompiledGrammar>>;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  CacheStats stats_;
};

}  // namespace tailor::grammar
