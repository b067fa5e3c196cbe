// A generation loop with the grammar as a sampler stage: logits -> mask -> Sampler -> accept, until EOS or
// the token budget. The logits come from a callback (random logits in tests, the model's forward pass in the
// engine tests), so the same loop proves validity both ways.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "grammar/matcher.h"
#include "sample/sampler.h"

namespace tailor::grammar {

enum class FinishReason {
  stop,    // the grammar ended and EOS was chosen
  length,  // max_tokens was reached before that (the output may be an unfinished value)
};
const char* finish_reason_name(FinishReason r);

struct ConstrainedOptions {
  int max_tokens = 512;
  // After this many tokens, steer toward the end: each step boosts the token that starts the grammar's
  // shortest completion (EOS once the grammar can end). Random logits otherwise wander for thousands of
  // tokens inside strings. -1 = never steer.
  int finish_after = -1;
};

struct ConstrainedGeneration {
  std::vector<int32_t> tokens;  // sampled ids, EOS included when finish == stop
  std::string text;             // bytes of the non-EOS tokens
  FinishReason finish = FinishReason::length;
  int steered = 0;  // tokens picked by the finishing policy
};

// logits_fn(tokens_so_far, logits) fills logits[n_vocab] for the next token.
using LogitsFn = std::function<void(std::span<const int32_t> tokens, std::span<float> logits)>;

// Runs from the matcher's current state. `prompt` is the history the sampler's penalties see before the
// output.
Result<ConstrainedGeneration> sample_constrained(GrammarMatcher& matcher, Sampler& sampler,
                                                 const LogitsFn& logits_fn, int32_t n_vocab,
                                                 const ConstrainedOptions& opt = {},
                                                 std::span<const int32_t> prompt = {});

}  // namespace tailor::grammar
