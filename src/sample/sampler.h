// The sampler chain: penalties -> grammar mask -> temperature -> top-k -> top-p -> min-p -> pick.
// Greedy (temperature 0) is an exact argmax with the lowest id winning ties: deterministic, never hangs.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/status.h"

namespace tailor {

struct SamplerParams {
  float temperature = 0.8f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off (CTRL-style: logit/p if > 0 else logit*p)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int penalty_last_n = 64;  // how many recent tokens the penalties look at (-1 = all)
  uint64_t seed = 0xC0FFEE;
};

Status validate(const SamplerParams& p);  // names the bad field and its valid range

// A bitmask over the vocabulary: bit i set = token i allowed. Words of 32 bits, (n_vocab + 31) / 32 of them.
using TokenMask = std::span<const uint32_t>;
inline bool mask_allows(TokenMask m, int32_t id) {
  return (m[size_t(id) >> 5] >> (id & 31)) & 1u;
}

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // Picks a token from logits[n_vocab]. `history` is the sequence so far (prompt + generated) for the
  // penalties. `mask`, when non-empty, forbids tokens whose bit is clear (the grammar stage); if it allows
  // nothing, returns -1. logits may be modified in place.
  // NaN logits count as -inf; -1 is also returned when no allowed token has a logit above -inf.
  // Deterministic: the result depends only on (seed, logits, history, mask) of this and earlier calls; each
  // non-greedy call draws exactly one value from the RNG, greedy calls draw none.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history, TokenMask mask = {});
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // reused scratch: no allocation per token after the first
};

// The chain without its penalties stage, as a pure function of its inputs: `u` (uniform in [0, 1), e.g. a
// counter-based RNG's draw) replaces the sampler's RNG, and the kept tokens are scanned in id order for the
// draw, as the CUDA sampler (src/backend/cuda/sample.cuh) scans them, so backends given the same logits and u
// pick the same token. Greedy when p.temperature is 0 (u unused). Penalty fields of p are ignored. logits may
// be modified in place. No allocation per call after a thread's first.
int32_t sample_with_uniform(const SamplerParams& p, std::span<float> logits, TokenMask mask, double u);

// Individual stages, exposed for tests. Each works on (logit, id) candidates sorted or not as noted.
void apply_penalties(std::span<float> logits, std::span<const int32_t> history, const SamplerParams& p);
int32_t argmax(std::span<const float> logits, TokenMask mask = {});

}  // namespace tailor
