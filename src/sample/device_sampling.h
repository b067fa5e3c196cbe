// Sampling a backend can run next to the logits (the CUDA runner draws on the GPU, so only token ids cross
// PCIe): the parameters of one sequence's draw at one step, and the CPU definition of that draw.
// The uniform comes from a counter-based RNG keyed by the sequence's seed and counted by its step
// (core/philox.h), not from the Sampler's mt19937_64 stream: a given seed reproduces its output on a given
// backend path, but device-sampled output differs from CPU-sampled output for the same seed.
#pragma once

#include <cstdint>
#include <span>

#include "sample/sampler.h"

namespace tailor {

struct DeviceSampling {
  float temperature = 0.0f;  // 0 = greedy: exact argmax, lowest id on ties
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  uint64_t seed = 0;         // the sequence's seed: Philox key
  uint64_t step = 0;         // which draw of the sequence: Philox counter (the same step draws the same u)
  // Empty: every token allowed. Else bit i set = token i allowed, (n_vocab + 31) / 32 words; tokens past the
  // end of a shorter mask are not allowed (as for Sampler::sample). This is how grammar masks travel.
  TokenMask mask;
};

// Whether a request's sampler needs nothing beyond DeviceSampling (penalties need the history: CPU only).
bool fits_device_sampling(const SamplerParams& p);
DeviceSampling device_sampling(const SamplerParams& p, uint64_t step, TokenMask mask = {});
// The SamplerParams of `d` (no penalties): validate() them to check `d`.
SamplerParams sampler_params(const DeviceSampling& d);

// The token that forward_sample picks from one row of logits, computed on the CPU: the sampler chain
// (sample_with_uniform) with u = philox_uniform(seed, step); -1 when no allowed token has a logit above
// -inf. logits are modified in place. Runner::forward_sample's default; the CUDA sampler picks the same.
int32_t sample_row(const DeviceSampling& d, std::span<float> logits);

}  // namespace tailor
