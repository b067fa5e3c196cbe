// A grammar compiled against one vocabulary: the pushdown automaton plus, for every automaton state (grouped
// into classes of states that no token can tell apart), the split of the vocabulary into
//   accepted  - tokens consumed entirely inside the state's rule (valid whatever the stack below holds),
//   returns   - trie nodes where the rule may end with bytes left over; the tokens below them depend on the
//               caller and are checked at run time (then cached per stack content),
//   rejected  - everything else.
// This is xgrammar's adaptive token mask idea, done over a DFA-per-rule pushdown automaton. Immutable after
// compilation except for the run-time cache, which is thread-safe.
#pragma once

#include <atomic>
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

namespace tailor {
class ThreadPool;
}

namespace tailor::grammar {

// For states of counted-loop rules (Automaton::RuleInfo::counted) acceptance depends on the run-time item
// count; the classification stores, per token and per return node, the interval of counts that allow it.
struct CountedEntry {
  int32_t id;
  uint32_t lo, hi;  // allowed when lo <= count <= hi
};
struct CountedExit {
  uint32_t node, lo, hi;
};

struct TokenClass {
  std::vector<uint32_t> dense;  // accepted tokens as a bitmask (when there are many), else empty
  std::vector<int32_t> sparse;  // accepted token ids (when there are few)
  std::vector<uint32_t> exits;  // trie nodes where the rule may return with bytes left
  uint32_t n_accepted = 0;
  bool inexact = false;  // a configuration set was cut (kMaxConfigs): masks must walk from the real state
  // counted-loop states only:
  bool counted = false;
  std::vector<CountedEntry> centries;
  std::vector<CountedExit> cexits;
  std::vector<uint32_t> cuts;  // sorted: the mask is the same for all counts between two cuts
  // Built from centries for fast per-count masks: entries valid from count 0 (as a bitmask when many, plus
  // their ids by ascending hi), and the few valid only from a positive count (the loop minimum).
  std::vector<uint32_t> from0_dense;
  std::vector<CountedEntry> from0_by_hi, late;
  uint32_t interval(uint32_t count) const;  // index of the run of counts holding `count`
};

struct CompileOptions {
  // Token classes are computed at compile time in breadth-first order from the start state until this budget
  // is spent; the rest on first use (then cached). Negative: all at compile time. 0: all on first use.
  double eager_ms = 40;
  AutomatonLimits limits;
  ThreadPool* threads =
      nullptr;  // for the eager classes; nullptr = a grammar-compilation pool (<= 4 threads)
};

struct CompileStats {
  double automaton_ms = 0, refine_ms = 0, classify_ms = 0;
  size_t n_states = 0, n_rules = 0, n_byte_classes = 0;
  size_t n_token_classes = 0;            // distinct state classes (each is one walk over the trie)
  size_t n_eager = 0;                    // of those, computed at compile time
  size_t n_dense = 0, n_exit_nodes = 0;  // over the eager ones
};

class CompiledGrammar {
 public:
  const Automaton& automaton() const { return automaton_; }
  const Vocabulary& vocab() const { return *vocab_; }
  const std::shared_ptr<const Vocabulary>& vocab_ptr() const { return vocab_; }
  const CompileStats& stats() const { return stats_; }
  const std::string& grammar_text() const { return grammar_text_; }

  int32_t class_of(int32_t state) const { return class_of_[size_t(state)]; }
  // The classification of class c, computed now if no one needed it before (thread-safe).
  const TokenClass& token_class(int32_t c) const {
    const TokenClass* p = classes_[size_t(c)].load(std::memory_order_acquire);
    return p ? *p : compute_class(c);
  }
  size_t n_token_classes() const { return reps_.size(); }
  size_t n_classes_computed() const;

  // The accepted tokens of counted class c at item count `count` (built on first use, cached per interval).
  std::shared_ptr<const TokenClass> counted_mask(int32_t c, uint32_t count) const;

  // Run-time cache of tokens accepted through returns, keyed by the stack content below the top rule.
  std::shared_ptr<const std::vector<int32_t>> find_returns(const std::string& key) const;
  void store_returns(const std::string& key, std::shared_ptr<const std::vector<int32_t>> ids) const;
  size_t cached_return_sets() const;

 private:
  friend Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(
      const Grammar& g, std::shared_ptr<const Vocabulary> vocab, const CompileOptions& opt);
  const TokenClass& compute_class(int32_t c) const;

  std::shared_ptr<const Vocabulary> vocab_;
  Automaton automaton_;
  std::vector<int32_t> class_of_;  // per state; -1 for states that never consume a byte
  std::vector<int32_t> reps_;      // per class: one of its states
  std::unique_ptr<std::atomic<const TokenClass*>[]> classes_;  // published once computed
  mutable std::vector<std::unique_ptr<TokenClass>> owned_;
  mutable std::mutex class_mu_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const TokenClass>> counted_masks_;
  CompileStats stats_;
  std::string grammar_text_;

  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const std::vector<int32_t>>> returns_;
  mutable size_t returns_ids_ = 0;
};

// Builds the automaton and classifies its states against the vocabulary's token trie.
Result<std::shared_ptr<const CompiledGrammar>> compile_grammar(const Grammar& g,
                                                               std::shared_ptr<const Vocabulary> vocab,
                                                               const CompileOptions& opt = {});

}  // namespace tailor::grammar
