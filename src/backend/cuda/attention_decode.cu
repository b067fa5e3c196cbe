// Split-K flash-decoding (see attention.cuh). Reference math: softmax(q·Kᵀ·scale, causal) · V per head, f32.
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/rope_head.cuh"

namespace tailor::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kKeysPerThread = 4;  // K and V rows each thread prefetches per inner chunk
constexpr int kMaxSub = 256;       // keys per inner chunk at most (scores kept in shared memory)

__host__ __device__ inline int lanes_per_key(int head_dim) {  // next power of two >= head_dim / 8
  int l = 1;
  while (l * 8 < head_dim) l <<= 1;
  return l;
}
__host__ __device__ inline int sub_keys(int head_dim) {  // keys per inner chunk
  const int kpp = kThreads / lanes_per_key(head_dim);
  return kpp * kKeysPerThread < kMaxSub ? kpp * kKeysPerThread : kMaxSub;
}

// 8 elements of KV as raw 16-byte words (one for half types, two for f32), loaded before they are needed.
template <class KV>
struct Raw8 {
  uint4 w[sizeof(KV) / 2];
};
template <class KV>
__device__ __forceinline__ Raw8<KV> load_raw8(const KV* p) {
  Raw8<KV> r;
#pragma unroll
  for (int i = 0; i < int(sizeof(KV) / 2); ++i) r.w[i] = __ldg(reinterpret_cast<const uint4*>(p) + i);
  return r;
}
template <class KV>
__device__ __forceinline__ void unpack8(const Raw8<KV>& r, float (&f)[8]) {
  if constexpr (sizeof(KV) == 4) {
    float a[4], b[4];
    unpack(r.w[0], a, float{});
    unpack(r.w[1], b, float{});
#pragma unroll
    for (int e = 0; e < 4; ++e) f[e] = a[e], f[e + 4] = b[e];
  } else {
    unpack(r.w[0], f, KV{});
  }
}

// Keys per split for a context of n_keys keys over a grid of n_split splits, and how many splits get keys.
__device__ __forceinline__ int split_chunk(int n_keys, int n_split, int min_keys) {
  return max((n_keys + n_split - 1) / n_split, min_keys);
}

// grid: (n_split, n_head_kv * n_hgroups, n_tok). Dynamic shared memory: see smem_bytes().
// Each block: the keys [k0, k1) of its split, for up to 8 query heads sharing one KV head. Per inner chunk
// every thread first issues the loads of its K and V rows (one memory latency per chunk), then scores, online
// softmax and the V accumulation. The grid is sized for the longest context the graph may see; a block
// derives from the token's position how many splits actually hold keys (n_active) and leaves at once when
// its split is empty. With n_active > 1, the last block of a (token, head group) to finish merges the
// n_active partial results (a counter, reset by that block), so no second kernel is launched.
template <class KV, class OutT, int kLp, int kHeadsPerBlock>
__global__ void __launch_bounds__(kThreads)
    attn_decode_kernel(const AttentionParams p, int n_split, float* __restrict__ ws_o,
                       float* __restrict__ ws_ml, unsigned int* __restrict__ counters) {
  extern __shared__ float smem[];
  __shared__ bool is_last;
  pdl_trigger();
  // pos and slots are uploaded inputs, never written by a kernel: with distinct_slots they are read (and the
  // keys before the newest one loaded) while the previous kernel finishes.
  if (!p.distinct_slots) pdl_wait();
  const int D = p.head_dim;
  constexpr int Lp = kLp;             // lanes per key (compile-time: the shuffle trees unroll and interleave)
  constexpr int kpp = kThreads / Lp;  // keys per pass of the whole block
  constexpr int n_sub_max = kpp * kKeysPerThread < kMaxSub ? kpp * kKeysPerThread : kMaxSub;
  const int G = p.n_head / p.n_head_kv;
  const int n_hgroups = (G + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const int kvh = blockIdx.y / n_hgroups, hg = blockIdx.y % n_hgroups;
  const int h0 = kvh * G + hg * kHeadsPerBlock;                 // first query head of this block
  const int nh = min(kHeadsPerBlock, G - hg * kHeadsPerBlock);  // heads in this block
  const int64_t t = blockIdx.z;
  const int split = blockIdx.x;
  const int n_keys = p.pos[t] + 1;
  const int chunk = split_chunk(n_keys, n_split, p.min_keys_per_split);
  const int n_active = (n_keys + chunk - 1) / chunk;
  if (split >= n_active) return;  // uniform over the block: no barrier is skipped by part of it
  const int slot = p.slots[t];
  const int k0 = split * chunk, k1 = min(n_keys, k0 + chunk);
  const int kl = threadIdx.x / Lp, dc = threadIdx.x % Lp;
  const bool has_dc = dc * 8 < D;
  const KV* kbase =
      static_cast<const KV*>(p.cache.k) + slot * p.cache.slot_stride + int64_t(kvh) * p.cache.capacity * D;
  const KV* vbase =
      static_cast<const KV*>(p.cache.v) + slot * p.cache.slot_stride + int64_t(kvh) * p.cache.capacity * D;
  // K and V rows of the current inner chunk, loaded before they are needed (one memory latency per chunk).
  const bool fused = p.qkv != nullptr;  // RoPE fused: this kernel writes the newest K/V row itself
  Raw8<KV> kraw[kKeysPerThread], vraw[kKeysPerThread];
  auto load_kv = [&](int c0, int n_sub, int key_begin, int key_end) {  // keys c0 + j in [key_begin, key_end)
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const int j = kl + i * kpp, key = c0 + j;
      if (j < n_sub && has_dc && key >= key_begin && key < key_end) {
        const KV* kp = kbase + int64_t(key) * D + dc * 8;
        const KV* vp = vbase + int64_t(key) * D + dc * 8;
        if (fused && key == n_keys - 1) {  // written by this block in this launch: not the read-only path
#pragma unroll
          for (int w = 0; w < int(sizeof(KV) / 2); ++w) {
            kraw[i].w[w] = __ldcg(reinterpret_cast<const uint4*>(kp) + w);
            vraw[i].w[w] = __ldcg(reinterpret_cast<const uint4*>(vp) + w);
          }
        } else {
          kraw[i] = load_raw8(kp);
          vraw[i] = load_raw8(vp);
        }
      }
    }
  };
  // The first chunk: everything but the newest key (position n_keys - 1, written by the previous kernel, or
  // by this block when fused) may be loaded before the wait when the slots are distinct.
  const int n_sub0 = min(n_sub_max, k1 - k0);
  if (p.distinct_slots) {
    load_kv(k0, n_sub0, k0, n_keys - 1);
    pdl_wait();
    if (!fused) load_kv(k0, n_sub0, n_keys - 1, n_keys);
  } else {
    load_kv(k0, n_sub0, k0, k1);
  }

  float* ps = smem;                               // [kHeadsPerBlock][n_sub_max]
  float* stat = ps + kHeadsPerBlock * n_sub_max;  // [3][kHeadsPerBlock]: m, l, corr
  float* red = stat + 4 * kHeadsPerBlock;  // [kWarps][kHeadsPerBlock][D], 16-byte aligned (stat padded)

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const KV* qbase = static_cast<const KV*>(p.q) + t * p.q_stride + int64_t(h0) * D;
  if (fused) {
    // One warp per job: the block's query heads (into shared memory, rounded to KV as the q buffer would
    // be), and, in the split that holds the newest key, that key's K and V rows (into the cache).
    KV* qs = reinterpret_cast<KV*>(red);  // [kHeadsPerBlock][D]; red is used only after the main loop
    const float* row = p.qkv + t * int64_t(p.n_head + 2 * p.n_head_kv) * D;
    const bool newest_here = split == n_active - 1;
    const int n_jobs = nh + (newest_here ? 2 : 0);
    for (int job = warp; job < n_jobs; job += kWarps) {
      const int head = job < nh ? h0 + job : (job == nh ? p.n_head + kvh : p.n_head + p.n_head_kv + kvh);
      const float* nw = job < nh ? p.q_norm : (job == nh ? p.k_norm : nullptr);
      float lo[kRopeMaxPairsPerLane], hi[kRopeMaxPairsPerLane];
      rope_head(row + int64_t(head) * D, p.qkv_bias ? p.qkv_bias + int64_t(head) * D : nullptr, nw,
                p.norm_eps, n_keys - 1, p.inv_freq, D, job <= nh, lane, lo, hi);
      KV* dst =
          job < nh ? qs + job * D : const_cast<KV*>(job == nh ? kbase : vbase) + int64_t(n_keys - 1) * D;
      store_head(dst, lo, hi, D, lane);
    }
    __syncthreads();
    qbase = qs;
    if (newest_here) load_kv(k0, n_sub0, n_keys - 1, n_keys);
  }
  float qr[kHeadsPerBlock][8];
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g) {
    if (g < nh && has_dc) {
      load8(qbase + int64_t(g) * D + dc * 8, qr[g]);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) qr[g][e] = 0.0f;
    }
  }
  if (threadIdx.x < kHeadsPerBlock) {
    stat[threadIdx.x] = -INFINITY;
    stat[kHeadsPerBlock + threadIdx.x] = 0.0f;
  }
  float acc[kHeadsPerBlock][8];
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;

  for (int c0 = k0; c0 < k1; c0 += n_sub_max) {
    const int n_sub = min(n_sub_max, k1 - c0);
    // 0) issue every K and V load of this chunk (the first chunk's were issued above).
    if (c0 != k0) load_kv(c0, n_sub, c0, c0 + n_sub);
      // 1) scores: Lp lanes per key, reduced with shuffles inside the lane group.
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const int j = kl + i * kpp;
      float kf[8];
      if (j < n_sub && has_dc) {
        unpack8(kraw[i], kf);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) kf[e] = 0.0f;
      }
#pragma unroll
      for (int g = 0; g < kHeadsPerBlock; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) d = fmaf(qr[g][e], kf[e], d);
#pragma unroll
        for (int o = Lp / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        if (dc == 0 && j < n_sub && g < nh) ps[g * n_sub_max + j] = d * p.scale;
      }
    }
    __syncthreads();  // also publishes stat's initial values on the first chunk
    // 2) online softmax update per head (one warp per head).
    for (int g = warp; g < nh; g += kWarps) {
      float mx = -INFINITY;
      for (int j = lane; j < n_sub; j += 32) mx = fmaxf(mx, ps[g * n_sub_max + j]);
      const float m_old = stat[g];
      const float m_new = fmaxf(m_old, warp_max(mx));
      float sum = 0.0f;
      for (int j = lane; j < n_sub; j += 32) {
        const float e = __expf(ps[g * n_sub_max + j] - m_new);
        ps[g * n_sub_max + j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float corr = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
        stat[g] = m_new;
        stat[kHeadsPerBlock + g] = stat[kHeadsPerBlock + g] * corr + sum;
        stat[2 * kHeadsPerBlock + g] = corr;
      }
    }
    __syncthreads();
    // 3) acc = acc * corr + Σ p · V.
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g) {
      const float corr = g < nh ? stat[2 * kHeadsPerBlock + g] : 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] *= corr;
    }
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const int j = kl + i * kpp;
      if (j < n_sub && has_dc) {
        float vf[8];
        unpack8(vraw[i], vf);
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          const float pg = g < nh ? ps[g * n_sub_max + j] : 0.0f;
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(pg, vf[e], acc[g][e]);
        }
      }
    }
    __syncthreads();  // ps is rewritten by the next chunk
  }

  // Reduce acc over the key lanes: first the key groups inside a warp (shuffles), then the warps (shared
  // memory); then write the output (one active split) or this split's partial (m, l, o).
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e)
#pragma unroll
      for (int o = Lp; o < 32; o <<= 1) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
  if (lane < Lp && has_dc) {
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g)
      if (g < nh) {
        float4* dst = reinterpret_cast<float4*>(red + (warp * kHeadsPerBlock + g) * D + dc * 8);
        dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
        dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
      }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * D; i += kThreads) {
    const int g = i / D, d = i % D;
    float o = 0.0f, o2 = 0.0f;  // two chains: the adds of the warps overlap
#pragma unroll
    for (int w = 0; w < kWarps; w += 2) {
      o += red[(w * kHeadsPerBlock + g) * D + d];
      o2 += red[((w + 1) * kHeadsPerBlock + g) * D + d];
    }
    o += o2;
    const int h = h0 + g;
    if (n_active == 1) {
      static_cast<OutT*>(p.out)[t * p.out_stride + int64_t(h) * D + d] =
          from_f32<OutT>(o / stat[kHeadsPerBlock + g]);
    } else {
      ws_o[((t * p.n_head + h) * n_split + split) * D + d] = o;
      if (d == 0) {
        float* ml = ws_ml + ((t * p.n_head + h) * n_split + split) * 2;
        ml[0] = stat[g];
        ml[1] = stat[kHeadsPerBlock + g];
      }
    }
  }
  if (n_active == 1) return;

  // The last block of this (token, head group) to finish merges the n_active splits.
  __threadfence();
  __syncthreads();
  unsigned int* counter = counters + (t * p.n_head_kv + kvh) * n_hgroups + hg;
  if (threadIdx.x == 0) is_last = atomicAdd(counter, 1u) == unsigned(n_active - 1);
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  // Merge weights w[g][s] = exp(m_s - M) / L, one warp per head (n_active <= 64: two per lane). Partials are
  // read with ld.cg: other blocks wrote them, and this SM's L1 must not serve stale lines.
  float* wts = red;  // [kHeadsPerBlock][64]; red is free again
  for (int g = warp; g < nh; g += kWarps) {
    const float* ml = ws_ml + (t * p.n_head + h0 + g) * n_split * 2;
    const float2 a =
        lane < n_active ? __ldcg(reinterpret_cast<const float2*>(ml) + lane) : make_float2(-INFINITY, 0.0f);
    const float2 b = lane + 32 < n_active ? __ldcg(reinterpret_cast<const float2*>(ml) + lane + 32)
                                          : make_float2(-INFINITY, 0.0f);
    const float M = warp_max(fmaxf(a.x, b.x));  // finite: every active split has keys
    const float w0 = a.x == -INFINITY ? 0.0f : __expf(a.x - M),
                w1 = b.x == -INFINITY ? 0.0f : __expf(b.x - M);
    const float inv_l = 1.0f / warp_sum(w0 * a.y + w1 * b.y);
    wts[g * 64 + lane] = w0 * inv_l;
    wts[g * 64 + lane + 32] = w1 * inv_l;
  }
  __syncthreads();
  // o = Σ_s w[s] o_s, four columns per thread with 16-byte loads; up to 16 splits' loads in flight at once.
  const int d4n = D / 4;
  for (int i = threadIdx.x; i < nh * d4n; i += kThreads) {
    const int g = i / d4n, d4 = i % d4n;
    const int64_t th = t * p.n_head + h0 + g;
    const float4* src = reinterpret_cast<const float4*>(ws_o + th * n_split * D) + d4;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int s0 = 0; s0 < n_active; s0 += 16) {
      float4 v[16];
#pragma unroll
      for (int s2 = 0; s2 < 16; ++s2)
        if (s0 + s2 < n_active) v[s2] = __ldcg(src + (s0 + s2) * d4n);
#pragma unroll
      for (int s2 = 0; s2 < 16; ++s2)
        if (s0 + s2 < n_active) {
          const float w = wts[g * 64 + s0 + s2];
          o.x = fmaf(w, v[s2].x, o.x);
          o.y = fmaf(w, v[s2].y, o.y);
          o.z = fmaf(w, v[s2].z, o.z);
          o.w = fmaf(w, v[s2].w, o.w);
        }
    }
    OutT* dst = static_cast<OutT*>(p.out) + t * p.out_stride + int64_t(h0 + g) * D + d4 * 4;
    dst[0] = from_f32<OutT>(o.x);
    dst[1] = from_f32<OutT>(o.y);
    dst[2] = from_f32<OutT>(o.z);
    dst[3] = from_f32<OutT>(o.w);
  }
  if (threadIdx.x == 0) *counter = 0;  // ready for the next launch (graph replays reuse the counters)
}

size_t smem_bytes(int head_dim, int heads_per_block) {
  return sizeof(float) * (size_t(heads_per_block) * sub_keys(head_dim) + 4 * heads_per_block +
                          size_t(kWarps) * heads_per_block * head_dim);
}

// Query heads per block (of one KV head's group; 4 or 8, each a set of compiled kernels): fewer heads per
// block = more blocks, each with a shorter
// chain of work per thread (the kernel is bound by that chain, not by bandwidth); K/V rows are then read once
// per head group (from L2 after the first).
int heads_per_block(const AttentionParams& p) {
  return p.heads_per_block == 8 ? 8 : 4;
}

template <class KV, class OutT, int kLp>
auto pick_kernel(int hpb) {
  return hpb == 8 ? attn_decode_kernel<KV, OutT, kLp, 8> : attn_decode_kernel<KV, OutT, kLp, 4>;
}

}  // namespace

int attention_decode_splits(int64_t n_tok, int n_head_kv, int n_sm, int64_t max_keys, int min_keys) {
  const int64_t blocks = std::max<int64_t>(1, n_tok * n_head_kv);
  const int64_t useful =
      std::max<int64_t>(1, ceil_div(max_keys, std::max(1, min_keys)));  // splits that can get keys
  // About one wave of blocks: each split's loads are a single memory round trip already, and every extra
  // split adds to the merge.
  return int(std::clamp<int64_t>(std::min(ceil_div(int64_t(n_sm), blocks), useful), 1, 64));
}

size_t attention_decode_workspace_bytes(int64_t n_tok, int n_head, int head_dim, int n_split) {
  if (n_split <= 1) return 0;
  return sizeof(float) * size_t(n_tok) * size_t(n_head) * size_t(n_split) * (size_t(head_dim) + 2);
}

cudaError_t attention_decode(const AttentionParams& p, int n_split, void* workspace, unsigned int* counters,
                             cudaStream_t stream) {
  if (p.n_tok <= 0) return cudaSuccess;
  if (p.head_dim % 8 != 0 || p.head_dim > 256 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 ||
      n_split < 1 || p.min_keys_per_split < 1 || p.n_tok > 65535 ||
      (n_split > 1 && (!workspace || !counters)) || n_split > 64 ||
      (p.qkv ? !p.distinct_slots || !p.inv_freq : !aligned16(p.q) || p.q_stride % 8 != 0))
    return cudaErrorInvalidValue;
  const int G = p.n_head / p.n_head_kv;
  const int hpb = heads_per_block(p);
  const int n_hgroups = (G + hpb - 1) / hpb;
  float* ws_o = static_cast<float*>(workspace);
  float* ws_ml = ws_o ? ws_o + size_t(p.n_tok) * p.n_head * n_split * p.head_dim : nullptr;
  const size_t smem = smem_bytes(p.head_dim, hpb);
  const dim3 grid(unsigned(n_split), unsigned(p.n_head_kv * n_hgroups), unsigned(p.n_tok));
  return dispatch_float(p.cache.t, [&](auto ktag) {
    using KV = decltype(ktag);
    return dispatch_float(p.out_t, [&](auto otag) {
      using OutT = decltype(otag);
      void (*k)(const AttentionParams, int, float*, float*, unsigned int*) = nullptr;
      switch (lanes_per_key(p.head_dim)) {
        case 1:
          k = pick_kernel<KV, OutT, 1>(hpb);
          break;
        case 2:
          k = pick_kernel<KV, OutT, 2>(hpb);
          break;
        case 4:
          k = pick_kernel<KV, OutT, 4>(hpb);
          break;
        case 8:
          k = pick_kernel<KV, OutT, 8>(hpb);
          break;
        case 16:
          k = pick_kernel<KV, OutT, 16>(hpb);
          break;
        default:
          k = pick_kernel<KV, OutT, 32>(hpb);
          break;
      }
      if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return e;
      }
      return launch_kernel(k, grid, dim3(kThreads), smem, stream, p, n_split, ws_o, ws_ml, counters);
    });
  });
}

}  // namespace tailor::cuda
