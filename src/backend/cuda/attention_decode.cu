// Split-K flash-decoding (see attention.cuh). Reference math: softmax(q·Kᵀ·scale, causal) · V per head, f32.
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/common.cuh"

namespace tailor::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kHeadsPerBlock = 8;  // query heads of one KV head handled together (GQA group, chunked by 8)
constexpr int kSub = 64;           // keys per inner chunk (scores kept in shared memory)
constexpr int kMinKeysPerSplit = 64;

__host__ __device__ inline int lanes_per_key(int head_dim) {  // next power of two >= head_dim / 8
  int l = 1;
  while (l * 8 < head_dim) l <<= 1;
  return l;
}

// grid: (n_split, n_head_kv * n_hgroups, n_tok). Dynamic shared memory: see smem_bytes().
template <class KV, class OutT>
__global__ void __launch_bounds__(kThreads)
    attn_decode_kernel(const AttentionParams p, int n_split, float* __restrict__ ws_o,
                       float* __restrict__ ws_ml) {
  extern __shared__ float smem[];
  const int D = p.head_dim;
  const int Lp = lanes_per_key(D);
  const int keys_per_pass = kThreads / Lp;
  const int G = p.n_head / p.n_head_kv;
  const int n_hgroups = (G + kHeadsPerBlock - 1) / kHeadsPerBlock;
  const int kvh = blockIdx.y / n_hgroups, hg = blockIdx.y % n_hgroups;
  const int h0 = kvh * G + hg * kHeadsPerBlock;                 // first query head of this block
  const int nh = min(kHeadsPerBlock, G - hg * kHeadsPerBlock);  // heads in this block
  const int64_t t = blockIdx.z;
  const int split = blockIdx.x;
  const int n_keys = p.pos[t] + 1;
  int chunk = (n_keys + n_split - 1) / n_split;
  chunk = max(chunk, kMinKeysPerSplit);
  const int k0 = split * chunk, k1 = min(n_keys, k0 + chunk);

  float* ps = smem;                          // [kHeadsPerBlock][kSub]
  float* stat = ps + kHeadsPerBlock * kSub;  // [3][kHeadsPerBlock]: m, l, corr
  float* red = stat + 3 * kHeadsPerBlock;    // [keys_per_pass][kHeadsPerBlock][D]

  if (k0 >= k1) {  // this split has no keys at this position: mark it empty for the combine pass
    if (threadIdx.x < nh) {
      float* ml = ws_ml + ((t * p.n_head + h0 + threadIdx.x) * n_split + split) * 2;
      ml[0] = -INFINITY;
      ml[1] = 0.0f;
    }
    return;
  }

  const int kl = threadIdx.x / Lp, dc = threadIdx.x % Lp;
  const bool has_dc = dc * 8 < D;
  const KV* qbase = static_cast<const KV*>(p.q) + t * p.q_stride + int64_t(h0) * D;
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
  const int slot = p.slots[t];
  const KV* kbase =
      static_cast<const KV*>(p.cache.k) + slot * p.cache.slot_stride + int64_t(kvh) * p.cache.capacity * D;
  const KV* vbase =
      static_cast<const KV*>(p.cache.v) + slot * p.cache.slot_stride + int64_t(kvh) * p.cache.capacity * D;

  if (threadIdx.x < kHeadsPerBlock) {
    stat[threadIdx.x] = -INFINITY;
    stat[kHeadsPerBlock + threadIdx.x] = 0.0f;
  }
  float acc[kHeadsPerBlock][8];
#pragma unroll
  for (int g = 0; g < kHeadsPerBlock; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int c0 = k0; c0 < k1; c0 += kSub) {
    const int n_sub = min(kSub, k1 - c0);
    // 1) scores: Lp lanes per key, 16-byte loads of K, reduced with shuffles inside the lane group.
    for (int j = kl; j < keys_per_pass * ((n_sub + keys_per_pass - 1) / keys_per_pass); j += keys_per_pass) {
      float kf[8];
      const bool valid = j < n_sub && has_dc;
      if (valid) {
        load8(kbase + int64_t(c0 + j) * D + dc * 8, kf);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) kf[e] = 0.0f;
      }
#pragma unroll
      for (int g = 0; g < kHeadsPerBlock; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) d = fmaf(qr[g][e], kf[e], d);
        for (int o = Lp / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        if (dc == 0 && j < n_sub && g < nh) ps[g * kSub + j] = d * p.scale;
      }
    }
    __syncthreads();
    // 2) online softmax update per head (one warp per head).
    for (int g = warp; g < nh; g += kThreads / 32) {
      float s0 = lane < n_sub ? ps[g * kSub + lane] : -INFINITY;
      float s1 = lane + 32 < n_sub ? ps[g * kSub + lane + 32] : -INFINITY;
      const float m_old = stat[g];
      const float m_new = fmaxf(m_old, warp_max(fmaxf(s0, s1)));
      const float e0 = lane < n_sub ? __expf(s0 - m_new) : 0.0f;
      const float e1 = lane + 32 < n_sub ? __expf(s1 - m_new) : 0.0f;
      if (lane < n_sub) ps[g * kSub + lane] = e0;
      if (lane + 32 < n_sub) ps[g * kSub + lane + 32] = e1;
      const float sum = warp_sum(e0 + e1);
      if (lane == 0) {
        const float corr = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
        stat[g] = m_new;
        stat[kHeadsPerBlock + g] = stat[kHeadsPerBlock + g] * corr + sum;
        stat[2 * kHeadsPerBlock + g] = corr;
      }
    }
    __syncthreads();
    // 3) acc = acc * corr + Σ p · V   (16-byte loads of V rows, the same lane layout as K).
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g) {
      const float corr = g < nh ? stat[2 * kHeadsPerBlock + g] : 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] *= corr;
    }
    if (has_dc) {
      for (int j = kl; j < n_sub; j += keys_per_pass) {
        float vf[8];
        load8(vbase + int64_t(c0 + j) * D + dc * 8, vf);
#pragma unroll
        for (int g = 0; g < kHeadsPerBlock; ++g) {
          const float pg = g < nh ? ps[g * kSub + j] : 0.0f;
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(pg, vf[e], acc[g][e]);
        }
      }
    }
    __syncthreads();  // ps is rewritten by the next chunk
  }

  // Reduce acc over the key lanes, then write the output (single split) or the partial (m, l, o).
  if (has_dc) {
#pragma unroll
    for (int g = 0; g < kHeadsPerBlock; ++g)
      if (g < nh) {
#pragma unroll
        for (int e = 0; e < 8; ++e) red[(kl * kHeadsPerBlock + g) * D + dc * 8 + e] = acc[g][e];
      }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nh * D; i += kThreads) {
    const int g = i / D, d = i % D;
    float o = 0.0f;
    for (int k = 0; k < keys_per_pass; ++k) o += red[(k * kHeadsPerBlock + g) * D + d];
    const int h = h0 + g;
    if (n_split == 1) {
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
}

// grid: n_tok * n_head; block: head_dim threads (rounded up to a warp). Merges the splits' (m, l, o).
template <class OutT>
__global__ void attn_combine_kernel(const AttentionParams p, int n_split, const float* __restrict__ ws_o,
                                    const float* __restrict__ ws_ml) {
  const int64_t th = blockIdx.x;  // t * n_head + h
  const int64_t t = th / p.n_head;
  const int h = int(th % p.n_head);
  const float* ml = ws_ml + th * n_split * 2;
  float M = -INFINITY;
  for (int s = 0; s < n_split; ++s) M = fmaxf(M, ml[2 * s]);
  const int d = threadIdx.x;
  if (d >= p.head_dim) return;
  float L = 0.0f, o = 0.0f;
  for (int s = 0; s < n_split; ++s) {
    const float m = ml[2 * s];
    if (m == -INFINITY) continue;  // empty split: its o was never written
    const float w = __expf(m - M);
    L += w * ml[2 * s + 1];
    o += w * ws_o[(th * n_split + s) * p.head_dim + d];
  }
  static_cast<OutT*>(p.out)[t * p.out_stride + int64_t(h) * p.head_dim + d] = from_f32<OutT>(o / L);
}

size_t smem_bytes(int head_dim) {
  const int keys_per_pass = kThreads / lanes_per_key(head_dim);
  return sizeof(float) * (size_t(kHeadsPerBlock) * kSub + 3 * kHeadsPerBlock +
                          size_t(keys_per_pass) * kHeadsPerBlock * head_dim);
}

}  // namespace

int attention_decode_splits(int64_t n_tok, int n_head_kv, int n_sm) {
  const int64_t blocks = std::max<int64_t>(1, n_tok * n_head_kv);
  return int(std::clamp<int64_t>(ceil_div(2 * int64_t(n_sm), blocks), 1, 64));
}

size_t attention_decode_workspace_bytes(int64_t n_tok, int n_head, int head_dim, int n_split) {
  if (n_split <= 1) return 0;
  return sizeof(float) * size_t(n_tok) * size_t(n_head) * size_t(n_split) * (size_t(head_dim) + 2);
}

cudaError_t attention_decode(const AttentionParams& p, int n_split, void* workspace, cudaStream_t stream) {
  if (p.n_tok <= 0) return cudaSuccess;
  if (p.head_dim % 8 != 0 || p.head_dim > 256 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 ||
      n_split < 1 || p.n_tok > 65535 || (n_split > 1 && !workspace) || !aligned16(p.q) || p.q_stride % 8 != 0)
    return cudaErrorInvalidValue;
  const int G = p.n_head / p.n_head_kv;
  const int n_hgroups = (G + kHeadsPerBlock - 1) / kHeadsPerBlock;
  float* ws_o = static_cast<float*>(workspace);
  float* ws_ml = ws_o ? ws_o + size_t(p.n_tok) * p.n_head * n_split * p.head_dim : nullptr;
  const size_t smem = smem_bytes(p.head_dim);
  const dim3 grid(unsigned(n_split), unsigned(p.n_head_kv * n_hgroups), unsigned(p.n_tok));
  return dispatch_float(p.cache.t, [&](auto ktag) {
    using KV = decltype(ktag);
    return dispatch_float(p.out_t, [&](auto otag) {
      using OutT = decltype(otag);
      auto* k = attn_decode_kernel<KV, OutT>;
      if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e != cudaSuccess) return e;
      }
      k<<<grid, kThreads, smem, stream>>>(p, n_split, ws_o, ws_ml);
      cudaError_t e = launch_status();
      if (e != cudaSuccess || n_split == 1) return e;
      const int threads = int(ceil_div(p.head_dim, 32) * 32);
      attn_combine_kernel<OutT>
          <<<unsigned(p.n_tok * p.n_head), threads, 0, stream>>>(p, n_split, ws_o, ws_ml);
      return launch_status();
    });
  });
}

}  // namespace tailor::cuda
