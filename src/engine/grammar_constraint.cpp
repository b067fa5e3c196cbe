#include "engine/grammar_constraint.h"

#include <algorithm>

#include "grammar/compiled_grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/vocab.h"

namespace tailor {

namespace {

// The grammar matcher as the engine's constraint, plus the finishing hint (the first token of the shortest
// completion; EOS once the document may end).
class GrammarConstraint final : public FinishingConstraint {
 public:
  explicit GrammarConstraint(std::shared_ptr<const grammar::CompiledGrammar> g) : m_(std::move(g)) {}
  void fill_mask(std::span<uint32_t> mask) override { m_.fill_next_token_mask(mask); }
  Status accept(int32_t token) override { return m_.accept(token); }
  bool finished() const override { return m_.finished(); }
  int32_t finishing_token() override {
    const grammar::Vocabulary& v = m_.vocab();
    const std::string rest = m_.shortest_completion();
    if (rest.empty()) return v.eos_ids().empty() ? -1 : v.eos_ids()[0];
    size_t len = 0;
    return v.trie().longest_prefix_token(rest, &len);
  }

 private:
  grammar::GrammarMatcher m_;
};

}  // namespace

GrammarFactory::GrammarFactory(const Tokenizer& tokenizer, std::vector<int32_t> eos_ids,
                               size_t cache_capacity)
    : tok_(tokenizer), eos_(std::move(eos_ids)), capacity_(std::max<size_t>(cache_capacity, 1)) {}

GrammarFactory::~GrammarFactory() = default;

Result<std::shared_ptr<const grammar::Vocabulary>> GrammarFactory::vocab() {
  std::lock_guard<std::mutex> lk(vocab_mu_);
  if (vocab_) return vocab_;
  const int32_t n = tok_.vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<int32_t> eos, excluded;
  for (int32_t id = 0; id < n; ++id) bytes[size_t(id)] = tok_.token_bytes(id);
  for (int32_t id : eos_)
    if (id >= 0 && id < n) eos.push_back(id);
  // Control tokens never belong inside a document; the end-of-sequence ids are allowed where it may end.
  for (int32_t id = 0; id < n; ++id)
    if (tok_.is_special(id) && std::find(eos.begin(), eos.end(), id) == eos.end()) excluded.push_back(id);
  TAILOR_ASSIGN_OR_RETURN(vocab_, grammar::Vocabulary::create(std::move(bytes), eos, excluded));
  return vocab_;
}

Result<std::shared_ptr<const grammar::CompiledGrammar>> GrammarFactory::compiled(const std::string& key,
                                                                                 std::string_view schema_json,
                                                                                 bool strict_additional) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  TAILOR_ASSIGN_OR_RETURN(auto v, vocab());
  grammar::JsonSchemaOptions o;
  o.strict_additional_properties = strict_additional;
  TAILOR_ASSIGN_OR_RETURN(grammar::Grammar g, grammar::json_schema_to_grammar(schema_json, o));
  TAILOR_ASSIGN_OR_RETURN(auto cg, grammar::compile_grammar(g, v));
  std::lock_guard<std::mutex> lk(mu_);
  auto it = index_.find(key);  // another thread may have compiled the same schema meanwhile
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(key, cg);
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return cg;
}

Result<std::unique_ptr<FinishingConstraint>> GrammarFactory::json_schema(std::string_view schema_json) {
  TAILOR_ASSIGN_OR_RETURN(auto cg, compiled(cat("schema:", schema_json), schema_json, true));
  return std::unique_ptr<FinishingConstraint>(new GrammarConstraint(std::move(cg)));
}

Result<std::unique_ptr<FinishingConstraint>> GrammarFactory::json_object() {
  static constexpr std::string_view kAnyObject = R"({"type": "object"})";
  TAILOR_ASSIGN_OR_RETURN(auto cg, compiled("json_object", kAnyObject, false));
  return std::unique_ptr<FinishingConstraint>(new GrammarConstraint(std::move(cg)));
}

GrammarFactory::Stats GrammarFactory::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {hits_, misses_, lru_.size()};
}

}  // namespace tailor
