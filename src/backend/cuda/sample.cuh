// Token sampling on the GPU: the sampler chain of src/sample (grammar mask -> temperature -> top-k -> top-p
// -> min-p -> draw) for each row of logits, so only token ids (not 600 KB of logits per row) cross PCIe. It
// picks what sample_row() (src/sample/device_sampling.h) picks on the CPU: the same candidate set (the
// weights are computed with the CPU's exp, bit for bit), the same probabilities, and the same token for the
// same uniform (kept tokens scanned in id order). Graph-capturable: no host sync, parameters read from device
// memory, no state kept between launches.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tailor::cuda {

// One row's parameters, in device memory (uploaded with the step's inputs). Same meaning as DeviceSampling.
struct SampleRow {
  float temperature = 0.0f;  // <= 0: greedy (exact argmax of the allowed logits, lowest id on ties)
  int32_t top_k = 0;         // <= 0 or >= the number of drawable tokens: off
  float top_p = 1.0f;        // >= 1 (or NaN): off
  float min_p = 0.0f;        // <= 0 (or NaN): off
  uint64_t seed = 0;         // the draw's uniform is philox_uniform(seed, step) (core/philox.h)
  uint64_t step = 0;
  int64_t mask_offset =
      -1;  // this row's bitmask is masks[mask_offset ...] ((n_vocab + 31) / 32 words); -1: none
};

// Largest vocabulary: weights are summed in 64-bit fixed point with 44 fractional bits (exact, so the sums,
// and the draws, do not depend on the order threads add them).
constexpr int64_t kSampleMaxVocab = int64_t(1) << 20;

// ids[r] = the token drawn for row r of f32 logits [n_rows, n_vocab] (row stride ld; ld = 0 reads the same
// row for every r) with rows[r] (device, [n_rows]); -1 when the row's mask allows no token with a logit above
// -inf. NaN logits count as -inf, +inf as the largest float (as on the CPU).
// work: f32 [n_rows, n_vocab] scratch for the weights; it may be `logits` itself when ld == n_vocab (the
// logits are then overwritten, as the CPU sampler overwrites its input). masks: device words that rows'
// mask_offset point into (null when no row has a mask).
// One block per row, a few passes over the row: max, top-k threshold (radix select over the logits' bits,
// ties at the boundary to the lowest ids), weights, top-p threshold (radix select over the weights' bits,
// weighted by mass), then a prefix scan in id order for the draw.
cudaError_t sample(int32_t* ids, const float* logits, int64_t ld, float* work, int64_t n_rows,
                   int64_t n_vocab, const SampleRow* rows, const uint32_t* masks, cudaStream_t stream);

}  // namespace tailor::cuda
