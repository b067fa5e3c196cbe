// SwiGLU activation over the fused gate/up projection.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

// gate_up: [n_tok, 2*n_ff] of dtype in_t with gate and up rows interleaved (column 2i = gate_i, 2i+1 = up_i),
// which is what the runner's fused weight [2*n_ff, n_embd] (rows gate_0, up_0, gate_1, ...) produces.
// bias: f32 [2*n_ff] in the same interleaved order, or nullptr.
// out[t, i] = silu(gate_i + bias_2i) * (up_i + bias_2i+1), out: [n_tok, n_ff] of dtype out_t.
cudaError_t silu_mul(void* out, DType out_t, const void* gate_up, DType in_t, const float* bias,
                     int64_t n_tok, int64_t n_ff, cudaStream_t stream);

}  // namespace tailor::cuda
