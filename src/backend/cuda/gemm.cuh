// Matrix products through cuBLASLt for prefill and large batches: f16/bf16 (or f32) operands, f32
// accumulation.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace tailor::cuda {

// Y[m, n] = alpha * X[m, k] · W[n, k]ᵀ + beta * Y[m, n]     (all row-major)
struct GemmParams {
  const void* w = nullptr;  // [n, k], dtype wt
  DType wt = DType::bf16;
  int64_t n = 0, k = 0;
  const void* x = nullptr;  // [m, ldx], dtype wt
  int64_t ldx = 0;
  int64_t m = 0;
  void* y = nullptr;  // [m, ldy], dtype yt (f32, or wt)
  DType yt = DType::f32;
  int64_t ldy = 0;
  float alpha = 1.0f, beta = 0.0f;
};

// One cuBLASLt handle, a workspace allocated once, and the algorithm chosen per shape (cached: the heuristic
// runs once per shape, so a captured graph replays no host-side search).
class GemmContext {
 public:
  ~GemmContext();
  // Allocates the workspace; returns the failing status (see gemm_status_string).
  static cublasStatus_t create(size_t workspace_bytes, std::unique_ptr<GemmContext>* out);
  cublasStatus_t run(const GemmParams& p, cudaStream_t stream);

 private:
  GemmContext() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

const char* gemm_status_string(cublasStatus_t s);

}  // namespace tailor::cuda
