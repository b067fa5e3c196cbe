#include "engine/grammar_support.h"

#include <algorithm>

namespace tailor {

Result<std::shared_ptr<const grammar::Vocabulary>> grammar_vocabulary(const Tokenizer& tok,
                                                                      const std::vector<int32_t>& stop_ids,
                                                                      int32_t n_vocab) {
  // The model's vocabulary can be larger than the tokenizer's (padding rows): those ids get no bytes and are
  // therefore never allowed by a grammar.
  std::vector<std::string> bytes(size_t(std::max(n_vocab, tok.vocab_size())));
  std::vector<int32_t> excluded;
  for (int32_t i = 0; i < tok.vocab_size(); ++i) {
    if (tok.is_special(i)) {
      if (std::find(stop_ids.begin(), stop_ids.end(), i) == stop_ids.end()) excluded.push_back(i);
      continue;
    }
    bytes[size_t(i)] = tok.token_bytes(i);
  }
  return grammar::Vocabulary::create(std::move(bytes), stop_ids, std::move(excluded));
}

Result<std::unique_ptr<grammar::GrammarMatcher>> make_matcher(grammar::GrammarCompiler& compiler,
                                                              const ConstraintSpec& spec) {
  Result<std::shared_ptr<const grammar::CompiledGrammar>> g = Status(ErrorCode::internal, "no constraint");
  switch (spec.kind) {
    case ConstraintSpec::Kind::none:
      return std::unique_ptr<grammar::GrammarMatcher>();
    case ConstraintSpec::Kind::json_schema:
      g = compiler.compile_json_schema(spec.source);
      break;
    case ConstraintSpec::Kind::regex:
      g = compiler.compile_regex(spec.source);
      break;
    case ConstraintSpec::Kind::grammar:
      g = compiler.compile_grammar_text(spec.source);
      break;
  }
  if (!g.ok()) return g.status();
  return std::make_unique<grammar::GrammarMatcher>(std::move(g).value());
}

}  // namespace tailor
