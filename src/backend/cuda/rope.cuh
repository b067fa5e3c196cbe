// Post-projection attention prep, fused: q/k/v bias, Qwen3 per-head q/k RMSNorm, RoPE (HF rotate_half
// layout), and the KV-cache write. One pass over the projection output instead of four.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

// One layer's KV cache: for each slot, k and v are [n_head_kv, capacity, head_dim] of dtype t; slot s starts
// s * slot_stride elements after k (resp. v).
struct KvCacheView {
  void* k = nullptr;
  void* v = nullptr;
  DType t = DType::bf16;
  int64_t capacity = 0;
  int64_t slot_stride = 0;
};

// qkv: f32 [n_tok, q_dim + 2*kv_dim], each row = q heads, then k heads, then v heads (head_dim each).
// bias: f32 [q_dim + 2*kv_dim] or nullptr. q_norm, k_norm: f32 [head_dim] or nullptr (RMSNorm over each head
// with eps, before RoPE). pos, slots: device int32 [n_tok]. inv_freq: f32 [head_dim/2] (scaling applied).
// Writes q_out [n_tok, n_head, head_dim] (dtype q_t) and row pos[t] of slot slots[t] of the cache.
// head_dim must be even and at most 256.
cudaError_t rope_qkv_store(void* q_out, DType q_t, const float* qkv, const float* bias, const float* q_norm,
                           const float* k_norm, float eps, const int32_t* pos, const int32_t* slots,
                           const float* inv_freq, const KvCacheView& cache, int64_t n_tok, int n_head,
                           int n_head_kv, int head_dim, cudaStream_t stream);

}  // namespace tailor::cuda
