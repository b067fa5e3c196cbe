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
  // Fused RMSNorm of the input (decode, batch <= 2): when norm_w is set, x is not read; each block first
  // builds x[b, :] = wt(norm_x[b, :] / sqrt(mean(norm_x[b, :]²) + norm_eps) * norm_w) in shared memory (as
  // rms_norm() would store it), saving the separate normalization launch. See gemv_norm_fusable().
  const float* norm_x = nullptr;  // f32 [batch, ld_norm_x]
  int64_t ld_norm_x = 0;
  const float* norm_w = nullptr;  // f32 [k]
  float norm_eps = 1e-6f;
  // CUDA-core kernel: each warp issues its first group of weight loads before waiting for the previous kernel
  // (weights are never written by kernels), so one memory latency of the stream hides behind that kernel's
  // tail. Off only for A/B measurements (bench_cuda_gemv).
  bool early_weights = true;
};

// Whether gemv() can fuse the RMSNorm for these parameters (batch <= 2, k a multiple of 8, 16-byte aligned
// rows, the normalized rows fit in 48 KiB of shared memory, no SwiGLU restriction).
bool gemv_norm_fusable(const GemvParams& p);

cudaError_t gemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tailor::cuda
