#include "grammar/compiler.h"

#include "grammar/grammar_text.h"

namespace tailor::grammar {

GrammarCompiler::GrammarCompiler(std::shared_ptr<const Vocabulary> vocab, size_t capacity)
    : vocab_(std::move(vocab)), capacity_(std::max<size_t>(capacity, 1)) {}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::cached(
    const std::string& key, const std::function<Result<Grammar>()>& make) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      return it->second->second;
    }
    ++stats_.misses;
  }
  // Compile outside the lock: compiles of different grammars proceed in parallel.
  TAILOR_ASSIGN_OR_RETURN(Grammar g, make());
  TAILOR_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledGrammar> cg, compile_grammar(g, vocab_));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;  // another thread won the race
  lru_.emplace_front(key, cg);
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return cg;
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile_json_schema(
    std::string_view schema_json, const JsonSchemaOptions& opt) {
  std::string key = cat("json-schema\n", opt.flexible_whitespace, ",", opt.max_whitespace, ",",
                        opt.strict_additional_properties, ",", opt.max_integer_digits, ",",
                        opt.max_fraction_digits, "\n", schema_json);
  return cached(key, [&] { return json_schema_to_grammar(schema_json, opt); });
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile_regex(std::string_view pattern,
                                                                              const RegexOptions& opt) {
  std::string key = cat("regex\n", opt.json_string, ",", opt.ascii_safe, "\n", pattern);
  return cached(key, [&] { return regex_to_grammar(pattern, opt); });
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile_grammar_text(std::string_view text) {
  return cached(cat("gbnf\n", text), [&] { return parse_grammar_text(text); });
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile(const Grammar& g) {
  return cached(cat("ir\n", g.to_text()), [&]() -> Result<Grammar> { return g; });
}

GrammarCompiler::CacheStats GrammarCompiler::cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace tailor::grammar
