// Greedy token choice on the GPU, so only token ids (not 600 KB of logits per row) cross PCIe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tailor::cuda {

// ids[r] = argmax_j logits[r, j] over f32 [n_rows, n_vocab] (row stride ld); the lowest index wins ties, NaN
// never wins (a row of only NaN gives 0).
cudaError_t argmax(int32_t* ids, const float* logits, int64_t ld, int64_t n_rows, int64_t n_vocab,
                   cudaStream_t stream);

}  // namespace tailor::cuda
