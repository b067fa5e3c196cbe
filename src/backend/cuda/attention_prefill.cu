// Flash-attention-2 style prefill on tensor cores (see attention.cuh). Reference: Dao, "FlashAttention-2"
// (2023), algorithm 1: per query tile, stream key/value tiles through shared memory, keep running row max and
// sum, rescale the output accumulator. mma.sync m16n8k16 (sm_80+), f32 accumulation; fragment layouts from
// the PTX ISA
// ("Matrix Fragments for mma.m16n8k16 with floating point type").
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/common.cuh"

namespace tailor::cuda {

namespace {

constexpr int kWarps = 4;  // 16 query rows each
constexpr int kKeys = 64;  // keys per shared-memory tile
static_assert(kWarps * 16 == kPrefillTileRows);

template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();  // the launcher only runs this kernel on sm_80+ (attention_prefill_supported + the runner's
             // check)
#endif
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();  // the launcher only runs this kernel on sm_80+ (attention_prefill_supported + the runner's
             // check)
#endif
}

template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  const T a = from_f32<T>(lo), b = from_f32<T>(hi);
  uint16_t ua, ub;
  memcpy(&ua, &a, 2);
  memcpy(&ub, &b, 2);
  return uint32_t(ua) | (uint32_t(ub) << 16);
}
__device__ __forceinline__ uint32_t pack_raw(uint16_t lo, uint16_t hi) {
  return uint32_t(lo) | (uint32_t(hi) << 16);
}

// grid: (n_tiles, n_head). Block: kWarps warps; warp w owns query rows [16w, 16w+16) of the tile.
template <class T, class OutT, int D>
__global__ void __launch_bounds__(kWarps * 32)
    attn_prefill_kernel(const AttentionParams p, const AttentionTile* __restrict__ tiles) {
  constexpr int kStride = D + 8;  // padded row (elements): fragment reads hit 32 distinct banks
  __shared__ __align__(16) uint16_t Ks[kKeys * kStride];
  __shared__ __align__(16) uint16_t Vs[kKeys * kStride];

  pdl_trigger();
  pdl_wait();
  const AttentionTile tile = tiles[blockIdx.x];
  const int h = blockIdx.y;
  const int kvh = h / (p.n_head / p.n_head_kv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, tq = lane & 3;  // groupID, thread in group (PTX fragment notation)

  // Q fragments for this warp's 16 rows, all of head_dim, kept in registers.
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // rows within the tile
  const bool v0 = r0 < tile.n_tok, v1 = r1 < tile.n_tok;
  const uint16_t* q = static_cast<const uint16_t*>(p.q);
  const uint16_t* q0 = q + int64_t(tile.tok_begin + (v0 ? r0 : 0)) * p.q_stride + int64_t(h) * D;
  const uint16_t* q1 = q + int64_t(tile.tok_begin + (v1 ? r1 : 0)) * p.q_stride + int64_t(h) * D;
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
    const int c = kc * 16 + 2 * tq;
    qa[kc][0] = v0 ? *reinterpret_cast<const uint32_t*>(q0 + c) : 0u;
    qa[kc][1] = v1 ? *reinterpret_cast<const uint32_t*>(q1 + c) : 0u;
    qa[kc][2] = v0 ? *reinterpret_cast<const uint32_t*>(q0 + c + 8) : 0u;
    qa[kc][3] = v1 ? *reinterpret_cast<const uint32_t*>(q1 + c + 8) : 0u;
  }
  const int pos0 = v0 ? p.pos[tile.tok_begin + r0] : -1;
  const int pos1 = v1 ? p.pos[tile.tok_begin + r1] : -1;
  const float scale_log2 = p.scale * 1.4426950408889634f;  // softmax in base 2: exp(x) = exp2(x log2 e)

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  const int n_keys = tile.max_pos + 1;
  const uint16_t* kbase = static_cast<const uint16_t*>(p.cache.k) + tile.slot * p.cache.slot_stride +
                          int64_t(kvh) * p.cache.capacity * D;
  const uint16_t* vbase = static_cast<const uint16_t*>(p.cache.v) + tile.slot * p.cache.slot_stride +
                          int64_t(kvh) * p.cache.capacity * D;

  // K/V tiles are double-buffered through registers: the loads of tile i+1 are issued before tile i is
  // computed, so their latency hides behind the tensor-core work.
  constexpr int kPerThread = kKeys * D / 8 / (kWarps * 32);  // 16-byte chunks per thread per tile (D / 16)
  static_assert(kKeys * D / 8 % (kWarps * 32) == 0);
  uint4 kreg[kPerThread], vreg[kPerThread];
  auto load_tile = [&](int kb) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int c = threadIdx.x + i * kWarps * 32;
      const int row = c / (D / 8), col = (c % (D / 8)) * 8;
      kreg[i] = vreg[i] = make_uint4(0, 0, 0, 0);  // rows past the end: zeros, never NaN
      if (kb + row < n_keys) {
        kreg[i] = *reinterpret_cast<const uint4*>(kbase + int64_t(kb + row) * D + col);
        vreg[i] = *reinterpret_cast<const uint4*>(vbase + int64_t(kb + row) * D + col);
      }
    }
  };
  load_tile(0);
  for (int kb = 0; kb < n_keys; kb += kKeys) {
    __syncthreads();  // the previous tile's readers are done
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int c = threadIdx.x + i * kWarps * 32;
      const int row = c / (D / 8), col = (c % (D / 8)) * 8;
      *reinterpret_cast<uint4*>(&Ks[row * kStride + col]) = kreg[i];
      *reinterpret_cast<uint4*>(&Vs[row * kStride + col]) = vreg[i];
    }
    __syncthreads();
    if (kb + kKeys < n_keys) load_tile(kb + kKeys);

    // S = Q Kᵀ for 16 rows x 64 keys: 8 n-tiles of 8 keys.
    float s[kKeys / 8][4];
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      const uint16_t* krow = &Ks[(nt * 8 + g) * kStride + 2 * tq];
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + kc * 16);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + kc * 16 + 8);
        mma16816<T>(s[nt], qa[kc], b0, b1);
      }
    }
    // Causal mask (key index > the row's position), scale, running max.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kb + nt * 8 + 2 * tq + (e & 1);
        const int pr = e < 2 ? pos0 : pos1;
        const float v = key <= pr ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    }
    float corr[2], mu[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      mu[r] = m_new == -INFINITY ? 0.0f : m_new;  // fully masked so far: keep everything at zero
      corr[r] = exp2f(m[r] - mu[r]);
      m[r] = m_new;
      l[r] *= corr[r];
    }
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pv = exp2f(s[nt][e] - mu[e >> 1]);
        s[nt][e] = pv;
        l[e >> 1] += pv;
      }
    }
    // O += P V: the S accumulators of two adjacent n-tiles are exactly the A fragment of a k16 step.
#pragma unroll
    for (int kc = 0; kc < kKeys / 16; ++kc) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * kc][0], s[2 * kc][1]);
      a[1] = pack2<T>(s[2 * kc][2], s[2 * kc][3]);
      a[2] = pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      a[3] = pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
      const uint16_t* vr = &Vs[(kc * 16 + 2 * tq) * kStride + g];
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) {
        const uint32_t b0 = pack_raw(vr[dn * 8], vr[kStride + dn * 8]);
        const uint32_t b1 = pack_raw(vr[8 * kStride + dn * 8], vr[9 * kStride + dn * 8]);
        mma16816<T>(o[dn], a, b0, b1);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  OutT* out = static_cast<OutT*>(p.out);
  const float inv0 = l[0] > 0.0f ? 1.0f / l[0] : 0.0f, inv1 = l[1] > 0.0f ? 1.0f / l[1] : 0.0f;
#pragma unroll
  for (int dn = 0; dn < D / 8; ++dn) {
    const int c = dn * 8 + 2 * tq;
    if (v0) {
      OutT* dst = out + int64_t(tile.tok_begin + r0) * p.out_stride + int64_t(h) * D + c;
      dst[0] = from_f32<OutT>(o[dn][0] * inv0);
      dst[1] = from_f32<OutT>(o[dn][1] * inv0);
    }
    if (v1) {
      OutT* dst = out + int64_t(tile.tok_begin + r1) * p.out_stride + int64_t(h) * D + c;
      dst[0] = from_f32<OutT>(o[dn][2] * inv1);
      dst[1] = from_f32<OutT>(o[dn][3] * inv1);
    }
  }
}

template <class T, class OutT>
cudaError_t launch(const AttentionParams& p, const AttentionTile* tiles, int n_tiles, cudaStream_t stream) {
  const dim3 grid(unsigned(n_tiles), unsigned(p.n_head));
  switch (p.head_dim) {
    case 64:
      return launch_kernel(attn_prefill_kernel<T, OutT, 64>, grid, dim3(kWarps * 32), 0, stream, p, tiles);
    case 80:
      return launch_kernel(attn_prefill_kernel<T, OutT, 80>, grid, dim3(kWarps * 32), 0, stream, p, tiles);
    case 96:
      return launch_kernel(attn_prefill_kernel<T, OutT, 96>, grid, dim3(kWarps * 32), 0, stream, p, tiles);
    case 128:
      return launch_kernel(attn_prefill_kernel<T, OutT, 128>, grid, dim3(kWarps * 32), 0, stream, p, tiles);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

bool attention_prefill_supported(DType kv_t, int head_dim) {
  return (kv_t == DType::f16 || kv_t == DType::bf16) &&
         (head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128);
}

cudaError_t attention_prefill(const AttentionParams& p, const AttentionTile* tiles, int n_tiles,
                              cudaStream_t stream) {
  if (n_tiles <= 0) return cudaSuccess;
  if (!attention_prefill_supported(p.cache.t, p.head_dim) || p.n_head_kv <= 0 ||
      p.n_head % p.n_head_kv != 0 || p.q_stride % 8 != 0 || !aligned16(p.cache.k) || !aligned16(p.cache.v))
    return cudaErrorInvalidValue;
  auto with_out = [&](auto ttag) {
    using T = decltype(ttag);
    return dispatch_float(p.out_t,
                          [&](auto otag) { return launch<T, decltype(otag)>(p, tiles, n_tiles, stream); });
  };
  return p.cache.t == DType::bf16 ? with_out(__nv_bfloat16{}) : with_out(__half{});
}

}  // namespace tailor::cuda
