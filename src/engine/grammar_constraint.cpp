#include "engine/grammar_constraint.h"

#include "engine/grammar_support.h"
#include "grammar/compiler.h"
#include "grammar/matcher.h"

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
  int32_t finishing_token() override { return m_.finishing_token(); }

 private:
  grammar::GrammarMatcher m_;
};

}  // namespace

GrammarFactory::GrammarFactory(const Tokenizer& tokenizer, std::vector<int32_t> eos_ids, int32_t n_vocab)
    : tok_(tokenizer), eos_(std::move(eos_ids)), n_vocab_(n_vocab) {}

GrammarFactory::~GrammarFactory() = default;

Result<grammar::GrammarCompiler*> GrammarFactory::compiler() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!compiler_) {
    TAILOR_ASSIGN_OR_RETURN(auto vocab, grammar_vocabulary(tok_, eos_, n_vocab_));
    compiler_ = std::make_unique<grammar::GrammarCompiler>(std::move(vocab));
  }
  return compiler_.get();
}

Result<std::unique_ptr<FinishingConstraint>> GrammarFactory::json_schema(std::string_view schema_json) {
  TAILOR_ASSIGN_OR_RETURN(grammar::GrammarCompiler * c, compiler());
  TAILOR_ASSIGN_OR_RETURN(auto g, c->compile_json_schema(schema_json));
  return std::unique_ptr<FinishingConstraint>(new GrammarConstraint(std::move(g)));
}

Result<std::unique_ptr<FinishingConstraint>> GrammarFactory::json_object() {
  TAILOR_ASSIGN_OR_RETURN(grammar::GrammarCompiler * c, compiler());
  grammar::JsonSchemaOptions o;
  o.strict_additional_properties = false;  // any keys, any values
  TAILOR_ASSIGN_OR_RETURN(auto g, c->compile_json_schema(R"({"type": "object"})", o));
  return std::unique_ptr<FinishingConstraint>(new GrammarConstraint(std::move(g)));
}

GrammarFactory::Stats GrammarFactory::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (!compiler_) return {};
  const auto s = compiler_->cache_stats();
  return {s.hits, s.misses, s.entries};
}

}  // namespace tailor
