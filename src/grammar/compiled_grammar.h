// A grammar compiled against one vocabulary: the pushdown automaton plus, for every automaton state (grouped
// into classes of states that no token can tell apart), the split of the vocabulary into
//   accepted  - tokens consumed entirely inside the state's rule (valid whatever the stack below holds),
//   returns   - trie nodes where the rule may end with bytes left over; the tokens below them depend on the
//               caller and are checked at run time (then cached per stack content),
//   rejected  - everything else.
// This is xgrammar's adaptive token mask idea, done over a DFA-per-rule pushdown automaton. Immutable after
// compilation except for the run-time cache, which is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "grammar/automaton.h"
#include "grammar/grammar.h"
#include "grammar/vocab.h"

namespace tailor::grammar {

struct TokenClass {
  std::vector<uint32_t> dense;  // accepted tokens as a bitmask (when there are many), else empty
  std::vector<int32_t> sparse;  // accepted token ids (when there are few)
  std::vector<uint32_t> exits;  // trie nodes where the rule may return with bytes left
  uint32_t n_accepted = 0;
};

struct CompileStats {
  double automaton_ms = 0, classify_ms = 0;
  size_t n_states = 0, n_rules = 0, n_byte_classes = 0;
  size_t n_token_classes = 0;  // distinct state classes walked over the trie
  size_t n_dense = 0, n_exit_nodes = 0;
};

class CompiledGrammar {
 public:
  const Automaton& automaton() const { return automaton_; }
  const Vocabulary& vocab() const { return *vocab_; }
  const std::shared_ptr<const Vocabulary>& vocab_ptr() const { return vocab_; }
  const CompileStats& stats() const { return stats_; }
  const std::string& grammar_text() const { return grammar_text_; }

  int32_t class_of(int32_t state) const { return class_of_[size_t(state)]; }
  const TokenClass& token_class(int32_t c) const { return classes_[size_t(c)]; }

  // Run-time cache of tokens accepted through returns, keyed by the stack content below the top rule.
  std::shared_ptr<const std::vector<int32_t>> find_returns(const std::string& key) const;
  void store_returns(const std::string& key, std::shared_ptr<const std::vector<int32_t>> ids) const;
  size_t cached_return_sets() const;

 private:
  friend Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(
      const Grammar& g, std::shared_ptr<const Vocabulary> vocab);
  std::shared_ptr<const Vocabulary> vocab_;
  Automaton automaton_;
  std::vector<int32_t> class_of_;  // per state; -1 for states that never consume a byte
  std::vector<TokenClass> classes_;
  CompileStats stats_;
  std::string grammar_text_;

  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const std::vector<int32_t>>> returns_;
  mutable size_t returns_ids_ = 0;
};

// Builds the automaton and classifies every state against the vocabulary's token trie.
Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(const Grammar& g,
                                                               std::shared_ptr<const Vocabulary> vocab);

}  // namespace tailor::grammar
