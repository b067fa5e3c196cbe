// Greedy token choice on the GPU, so only token ids (not 600 KB of logits per row) cross PCIe.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace tailor::cuda {

// ids[r] = argmax_j logits[r, j] over f32 [n_rows, n_vocab] (row stride ld); the lowest index wins ties, NaN
// never wins (a row of only NaN gives 0).
// With partials (argmax_workspace_bytes(n_rows)) and counters (device uint32 [n_rows], zeroed once, left zero
// by every launch), each row is split over kArgmaxParts blocks and the last one to finish picks among their
// results: a 152k-entry row then takes a few microseconds instead of one SM's ~15. Without them: one block
// per row.
constexpr int kArgmaxParts = 16;
size_t argmax_workspace_bytes(int64_t n_rows);
cudaError_t argmax(int32_t* ids, const float* logits, int64_t ld, int64_t n_rows, int64_t n_vocab,
                   cudaStream_t stream, void* partials = nullptr, unsigned int* counters = nullptr);

}  // namespace tailor::cuda
