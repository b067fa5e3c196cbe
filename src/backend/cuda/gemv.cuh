// Matrix-vector products for decode (batch 1..8): bandwidth-bound, one pass over the weights per step.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

constexpr int kGemvMaxBatch = 8;

// y[b, :] = alpha * (W · x[b, :] + bias) + beta * y[b, :]       for b < batch
// or, with swiglu (W rows interleaved gate_0, up_0, gate_1, ...; n even):
// y[b, i] = silu(a[2i]) * a[2i+1],  a = W · x[b, :] + bias     (alpha and beta unused; y has n/2 columns)
struct GemvParams {
  const void* w = nullptr;  // [n, k], dtype wt (f32/f16/bf16)
  DType wt = DType::bf16;
  int64_t n = 0, k = 0;
  const void* x = nullptr;  // [batch, ldx], dtype wt
  int64_t ldx = 0;
  void* y = nullptr;  // [batch, ldy], dtype yt (f32/f16/bf16); beta != 0 needs yt == f32
  DType yt = DType::f32;
  int64_t ldy = 0;
  int batch = 1;                // 1..kGemvMaxBatch
  const float* bias = nullptr;  // [n] or nullptr
  float alpha = 1.0f, beta = 0.0f;
  bool swiglu = false;
  // From this batch size on, f16/bf16 products run on tensor cores (mma.sync, sm_80+): the CUDA-core kernel's
  // FMAs and x re-reads grow with the batch, the tensor-core kernel stays bandwidth-bound up to 8.
  int mma_min_batch = 3;
};

cudaError_t gemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tailor::cuda
