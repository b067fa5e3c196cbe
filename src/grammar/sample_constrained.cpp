#include "grammar/sample_constrained.h"

#include <algorithm>
#include <cmath>

namespace tailor::grammar {

const char* finish_reason_name(FinishReason r) {
  return r == FinishReason::stop ? "stop" : "length";
}

Result<ConstrainedGeneration> sample_constrained(GrammarMatcher& matcher, Sampler& sampler,
                                                 const LogitsFn& logits_fn, int32_t n_vocab,
                                                 const ConstrainedOptions& opt,
                                                 std::span<const int32_t> prompt) {
  const Vocabulary& vocab = matcher.vocab();
  if (n_vocab < vocab.size()) {
    return invalid_argument(cat("sample_constrained: n_vocab ", n_vocab,
                                " is smaller than the grammar's vocabulary (", vocab.size(), ")"));
  }
  ConstrainedGeneration out;
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  std::vector<uint32_t> mask((size_t(n_vocab) + 31) / 32);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  for (int step = 0; step < opt.max_tokens; ++step) {
    logits_fn(out.tokens, logits);
    matcher.fill_next_token_mask(mask);
    bool steer = opt.finish_after >= 0 && step >= opt.finish_after;
    if (steer) {
      const int32_t target = matcher.finishing_token();
      if (target >= 0 && mask_allows(mask, target)) {
        float top = *std::max_element(logits.begin(), logits.end());
        logits[size_t(target)] =
            (std::isfinite(top) ? top : 0.0f) + 1000.0f;  // a certain pick at any temperature
        ++out.steered;
      }
    }
    int32_t id = sampler.sample(logits, history, mask);
    if (id < 0) {
      size_t allowed = 0;
      for (uint32_t w : mask) allowed += size_t(__builtin_popcount(w));
      if (allowed > 0) {
        return internal_error(cat("the sampler picked no token although the grammar mask allows ", allowed,
                                  " (after ", out.tokens.size(), " tokens)"));
      }
      return internal_error(cat("grammar allowed no token after ", out.tokens.size(),
                                " tokens (text so far: ", out.text.size(), " bytes)"));
    }
    if (!matcher.accept_token(id)) {
      return internal_error(cat("grammar rejected token ", id, " that its own mask allowed"));
    }
    out.tokens.push_back(id);
    history.push_back(id);
    if (vocab.is_eos(id)) {
      out.finish = FinishReason::stop;
      return out;
    }
    out.text += vocab.token_bytes(id);
  }
  out.finish = FinishReason::length;
  return out;
}

}  // namespace tailor::grammar
