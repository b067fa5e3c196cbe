// The per-sequence grammar state: the sampler-chain stage the engine drives each decode step as
//   matcher.fill_next_token_mask(mask);  id = sampler.sample(logits, history, mask);
//   matcher.accept_token(id);
// The mask has bit i set when token i may come next (32-bit words); end-of-sequence tokens are allowed
// exactly where the grammar can end. Not thread-safe (one matcher per sequence); the CompiledGrammar it
// shares is.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/pda.h"
#include "sample/constraint.h"

namespace tailor::grammar {

class GrammarMatcher : public TokenConstraint {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar);

  // TokenConstraint (the sampler chain's view).
  void fill_mask(std::span<uint32_t> mask) override { fill_next_token_mask(mask); }
  Status accept(int32_t token) override;
  // EOS was accepted, or the text is complete and nothing but EOS may follow.
  bool finished() const override { return cur().terminated || (cur().can_end && cur().configs.empty()); }
  // The longest token that starts shortest_completion(), or the first EOS id once the grammar can end.
  int32_t finishing_token() override;

  // Advances by one token. Returns false, leaving the state unchanged, when the grammar does not allow it.
  // An EOS token is accepted where the grammar can end and terminates the matcher.
  bool accept_token(int32_t id);
  // Advances by raw bytes (forced text from jump_forward()); counts as one step for rollback.
  bool accept_bytes(std::string_view bytes);
  // Writes the allowed-token bitmask; mask.size() must be >= vocab().mask_words(); extra words are zeroed.
  void fill_next_token_mask(std::span<uint32_t> mask);
  // Undoes the last n accepted steps (n <= num_steps()).
  void rollback(size_t n);
  void reset();

  bool can_end() const { return cur().can_end && !cur().terminated; }
  bool is_complete() const { return can_end(); }
  bool is_terminated() const { return cur().terminated; }
  size_t num_steps() const { return history_.size() - 1; }

  // Bytes that every continuation must start with (empty when there is a choice or the grammar can end).
  std::string jump_forward(size_t max_bytes = 4096) const;
  // The shortest byte string that lets the grammar end from here (for finishing a generation on a budget).
  std::string shortest_completion(size_t max_bytes = 1 << 16) const;

  const CompiledGrammar& grammar() const { return *g_; }
  const Vocabulary& vocab() const { return g_->vocab(); }

 private:
  struct Snapshot {
    std::vector<Config> configs;  // byte-ready configurations
    bool can_end = false;
    bool terminated = false;
    bool truncated = false;  // the configuration set was cut at kMaxConfigs
  };
  void fill_by_walk(std::span<uint32_t> mask);
  const Snapshot& cur() const { return history_.back(); }
  bool advance(const Snapshot& from, std::string_view bytes, Snapshot* to);
  std::shared_ptr<const std::vector<int32_t>> returns_for(const Config& c, int32_t cls);

  std::shared_ptr<const CompiledGrammar> g_;
  const Automaton* A_;
  mutable StackArena arena_;
  std::vector<Snapshot> history_;
  // scratch
  std::vector<Config> tmp_a_, tmp_b_;
  std::string key_;
  WalkScratch ws_;
};

}  // namespace tailor::grammar
