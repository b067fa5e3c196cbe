// Device-side RoPE of one head by one warp, shared by rope_qkv_store (rope.cu) and the decode attention that
// fuses it (attention_decode.cu), so both apply exactly the same arithmetic. Include from .cu files only.
// Reference: HF modeling_llama.py apply_rotary_pos_emb / rotate_half; modeling_qwen3.py q_norm/k_norm.
#pragma once

#include <cstdint>

#include "backend/cuda/common.cuh"

namespace tailor::cuda {

constexpr int kRopeMaxPairsPerLane = 4;  // head_dim <= 256

// src: the head's head_dim projection outputs (f32), b: its bias or null, nw: its RMSNorm weight (Qwen3
// q_norm/k_norm) or null. Lane l gets the pairs (i, i + head_dim/2) for i = l + 32c in lo[c], hi[c], with the
// bias added, normalized, and rotated by position p when `rotate` (q and k; v is not).
__device__ __forceinline__ void rope_head(const float* __restrict__ src, const float* __restrict__ b,
                                          const float* __restrict__ nw, float eps, int32_t p,
                                          const float* __restrict__ inv_freq, int head_dim, bool rotate,
                                          int lane, float (&lo)[kRopeMaxPairsPerLane],
                                          float (&hi)[kRopeMaxPairsPerLane]) {
  const int half = head_dim / 2;
  float ss = 0.0f;
#pragma unroll
  for (int c = 0; c < kRopeMaxPairsPerLane; ++c) {
    const int i = lane + 32 * c;
    lo[c] = hi[c] = 0.0f;
    if (i < half) {
      lo[c] = src[i] + (b ? b[i] : 0.0f);
      hi[c] = src[i + half] + (b ? b[i + half] : 0.0f);
      ss += lo[c] * lo[c] + hi[c] * hi[c];
    }
  }
  if (nw) {
    const float inv = rsqrtf(warp_sum(ss) / float(head_dim) + eps);
#pragma unroll
    for (int c = 0; c < kRopeMaxPairsPerLane; ++c) {
      const int i = lane + 32 * c;
      if (i < half) {
        lo[c] = lo[c] * inv * nw[i];
        hi[c] = hi[c] * inv * nw[i + half];
      }
    }
  }
  if (rotate) {
#pragma unroll
    for (int c = 0; c < kRopeMaxPairsPerLane; ++c) {
      const int i = lane + 32 * c;
      if (i < half) {
        // Angle in f32 exactly as HF forms it (inv_freq * position), then full-precision sin/cos.
        const float ang = float(p) * inv_freq[i];
        float sn, cs;
        sincosf(ang, &sn, &cs);
        const float a = lo[c], bb = hi[c];
        lo[c] = a * cs - bb * sn;
        hi[c] = bb * cs + a * sn;
      }
    }
  }
}

// Stores a head computed by rope_head (lane's pairs) to dst[0, head_dim) in dtype T.
template <class T>
__device__ __forceinline__ void store_head(T* __restrict__ dst, const float (&lo)[kRopeMaxPairsPerLane],
                                           const float (&hi)[kRopeMaxPairsPerLane], int head_dim, int lane) {
  const int half = head_dim / 2;
#pragma unroll
  for (int c = 0; c < kRopeMaxPairsPerLane; ++c) {
    const int i = lane + 32 * c;
    if (i < half) {
      dst[i] = from_f32<T>(lo[c]);
      dst[i + half] = from_f32<T>(hi[c]);
    }
  }
}

}  // namespace tailor::cuda
