// Host side of the GPU sampler's parameters: a DeviceSampling (src/sample) as the SampleRow the kernel reads.
// C++20 (DeviceSampling holds a std::span): include from .cpp files, not from .cu files.
#pragma once

#include <cstdint>

#include "backend/cuda/sample.cuh"
#include "sample/device_sampling.h"

namespace tailor::cuda {

// mask_offset: where this row's mask words start in the masks buffer; ignored (-1) when d has no mask.
inline SampleRow to_sample_row(const DeviceSampling& d, int64_t mask_offset) {
  SampleRow r;
  r.temperature = d.temperature;
  r.top_k = d.top_k;
  r.top_p = d.top_p;
  r.min_p = d.min_p;
  r.seed = d.seed;
  r.step = d.step;
  r.mask_offset = d.mask.empty() ? -1 : mask_offset;
  return r;
}

}  // namespace tailor::cuda
