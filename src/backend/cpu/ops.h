// CPU reference ops (also the fast CPU path). Activations are f32; weights stay in their stored dtype
// (f32/f16/bf16) and are widened in registers with f32 accumulation. Outputs first (llm.c style).
// Every CUDA op in src/backend/cuda is checked against the op of the same name here.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cpu {

// y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]).  x, y: f32 row-major. w: rows of k elements of dtype wt.
// Multithreaded over n (and m for large m); SIMD by run-time dispatch (AVX-512/AVX2+FMA/scalar). With bf16
// weights on a CPU with AVX512_BF16 the compute dtype is bf16: x is rounded to bf16 and vdpbf16ps accumulates
// the products in f32 (as HF and llama.cpp compute bf16 models); otherwise x stays f32.
bool matmul_rounds_x_to_bf16(DType wt);
void matmul(float* y, const float* x, const void* w, DType wt, const float* bias, int64_t m, int64_t n,
            int64_t k);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w[:]   (HF LlamaRMSNorm: statistics in f32).
void rms_norm(float* out, const float* x, const float* w, int64_t rows, int64_t dim, float eps);

// out[i, :] = table[ids[i], :] * scale   (table rows of dim elements in dtype t).
void embedding(float* out, const void* table, DType t, const int32_t* ids, int64_t n, int64_t dim,
               float scale);

// Rotary embedding in the HF "rotate_half" layout (pairs (j, j + head_dim/2)), in place.
// x: [n_tokens, n_heads, head_dim]; pos[n_tokens]; inv_freq[head_dim/2] (already includes rope scaling).
void rope(float* x, const int32_t* pos, const float* inv_freq, int64_t n_tokens, int n_heads, int head_dim);

// out[i] = silu(gate[i]) * up[i].
void silu_mul(float* out, const float* gate, const float* up, int64_t n);

// Causal grouped-query attention of one sequence against its KV cache.
// q: [n_tokens, n_head, head_dim] f32. k, v: the cache, [n_head_kv, capacity, head_dim] of dtype kv_t.
// Query token t sits at absolute position pos[t] and attends to cache rows 0..pos[t] (inclusive).
// out: [n_tokens, n_head, head_dim] f32. Softmax in f32 with max subtraction.
void attention(float* out, const float* q, const void* k, const void* v, DType kv_t, int64_t capacity,
               const int32_t* pos, int64_t n_tokens, int n_head, int n_head_kv, int head_dim, float scale);

// Writes rows of f32 [n_tokens, n_head_kv, head_dim] into the cache [n_head_kv, capacity, head_dim] at
// pos[t].
void kv_store(void* cache, DType kv_t, int64_t capacity, const float* src, const int32_t* pos,
              int64_t n_tokens, int n_head_kv, int head_dim);

// x[i] += y[i] * scale
void add_scaled(float* x, const float* y, float scale, int64_t n);

}  // namespace tailor::cpu
