// RMSNorm fused with the residual add (HF LlamaRMSNorm: statistics in f32).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

// For each output row r (source row s = rows ? rows[r] : r):
//   if delta:  x[s, :] += delta[s, :] * delta_scale          (the residual add, written back to x)
//   out[r, :] = x[s, :] / sqrt(mean(x[s, :]²) + eps) * w[:]   (stored as out_t: f32, f16 or bf16)
// x, delta: f32 [*, dim]; w: f32 [dim]; rows: device int32 [n_rows] or nullptr; out: [n_rows, dim].
cudaError_t rms_norm(void* out, DType out_t, float* x, const float* delta, float delta_scale, const float* w,
                     const int32_t* rows, int64_t n_rows, int64_t dim, float eps, cudaStream_t stream);

}  // namespace tailor::cuda
