// Token embedding lookup on the GPU (the CUDA twin of cpu::embedding).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

// out[i, :] = table[ids[i], :] * scale.   out: f32 [n, dim]; table: [n_vocab, dim] of dtype t (f32/f16/bf16);
// ids: device int32 [n]. An id outside [0, n_vocab) gives a zero row (the runner rejects such ids before).
cudaError_t embedding(float* out, const void* table, DType t, int64_t n_vocab, const int32_t* ids, int64_t n,
                      int64_t dim, float scale, cudaStream_t stream);

}  // namespace tailor::cuda
