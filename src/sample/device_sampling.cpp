#include "sample/device_sampling.h"

#include "core/philox.h"

namespace tailor {

bool fits_device_sampling(const SamplerParams& p) {
  const bool penalties = p.penalty_last_n != 0 && (p.repetition_penalty != 1.0f || p.presence_penalty != 0 ||
                                                   p.frequency_penalty != 0);
  return !penalties;
}

DeviceSampling device_sampling(const SamplerParams& p, uint64_t step, TokenMask mask) {
  DeviceSampling d;
  d.temperature = p.temperature;
  d.top_k = p.top_k;
  d.top_p = p.top_p;
  d.min_p = p.min_p;
  d.seed = p.seed;
  d.step = step;
  d.mask = mask;
  return d;
}

SamplerParams sampler_params(const DeviceSampling& d) {
  SamplerParams p;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.seed = d.seed;
  return p;
}

int32_t sample_row(const DeviceSampling& d, std::span<float> logits) {
  const SamplerParams p = sampler_params(d);
  const double u = d.temperature > 0 ? philox_uniform(d.seed, d.step) : 0.0;
  return sample_with_uniform(p, logits, d.mask, u);
}

}  // namespace tailor
