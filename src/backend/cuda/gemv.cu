#include "backend/cuda/common.cuh"
#include "backend/cuda/gemv.cuh"

#include <type_traits>

namespace tailor::cuda {

namespace {

constexpr int kWarps = 8;

template <class YT, bool kSwiglu>
__device__ __forceinline__ void gemv_store(const GemvParams& p, int64_t row, int b, float a, float a_up) {
  YT* y = static_cast<YT*>(p.y) + int64_t(b) * p.ldy;
  if constexpr (kSwiglu) {
    y[row / 2] = from_f32<YT>(silu(a) * a_up);
  } else {
    float v = p.alpha * a;
    if (p.beta != 0.0f) v += p.beta * to_f32(y[row]);
    y[row] = from_f32<YT>(v);
  }
}

// Each warp owns kRows consecutive rows and streams them with 16-byte loads, kUnroll x kRows loads in flight
// per lane before the first use; lanes stride the row so every load instruction of a warp covers 512
// contiguous bytes. x is re-read from L1/L2 by every warp (it is tiny); weights bypass L1.
template <class T, class YT, int kB, int kRows, int kUnroll, bool kSwiglu, bool kNorm>
__global__ void __launch_bounds__(kWarps * 32, kB <= 2 ? 2 : 1) gemv_kernel(const GemvParams p) {
  constexpr int V = kVec<T>;
  extern __shared__ uint4 gemv_smem[];  // kNorm: the normalized input rows [kB][k] of T
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * kRows;
  const T* X = static_cast<const T*>(p.x);
  int64_t ldx = p.ldx;
  const int64_t kv = p.k / V;
  const T* W = static_cast<const T*>(p.w);
  const uint4* wr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wr[r] = reinterpret_cast<const uint4*>(W + min(row0 + r, p.n - 1) * p.k);
  // The first kUnroll x kRows weight loads, issued before the wait for the previous kernel (rows past n are
  // clamped to the last row, so every address is valid; such warps leave below without using them).
  uint4 w0[kUnroll][kRows];
  const bool early = p.early_weights && lane + 32 * (kUnroll - 1) < kv;
  if (early) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRows; ++r) w0[u][r] = ld_stream(wr[r] + lane + 32 * u);
  }
  if constexpr (kNorm) {
    // RMSNorm prologue (HF LlamaRMSNorm, statistics in f32), every thread of the block taking part.
    __shared__ float red[32];
    pdl_wait();
    T* xs = reinterpret_cast<T*>(gemv_smem);
    for (int b = 0; b < kB; ++b) {
      const float* xb = p.norm_x + int64_t(min(b, p.batch - 1)) * p.ld_norm_x;
      float ss = 0.0f;
      for (int64_t i = int64_t(threadIdx.x) * 8; i < p.k; i += kWarps * 32 * 8) {
        float f[8];
        load8(xb + i, f);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += f[e] * f[e];
      }
      const float inv = rsqrtf(block_sum(ss, red) / float(p.k) + p.norm_eps);
      for (int64_t i = int64_t(threadIdx.x) * 8; i < p.k; i += kWarps * 32 * 8) {
        float f[8], g[8];
        load8(xb + i, f);
        load8(p.norm_w + i, g);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = f[e] * inv * g[e];
        store8(xs + int64_t(b) * p.k + i, f);
      }
    }
    __syncthreads();
    X = xs;
    ldx = p.k;
  }
  if (row0 >= p.n) return;
  // x comes from the previous kernel. Dependents are released only after the main loop (below): released
  // earlier, their blocks would take SM slots from this kernel's weight stream (measured slower on H200).
  if constexpr (!kNorm) pdl_wait();
  const uint4* xr[kB];
#pragma unroll
  for (int b = 0; b < kB; ++b) xr[b] = reinterpret_cast<const uint4*>(X + int64_t(min(b, p.batch - 1)) * ldx);

  float acc[kRows][kB];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int b = 0; b < kB; ++b) acc[r][b] = 0.0f;

  auto step = [&](const uint4(&wv)[kRows], int64_t v) {
    float wf[kRows][V];
#pragma unroll
    for (int r = 0; r < kRows; ++r) unpack(wv[r], wf[r], T{});
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      float xf[V];
      if constexpr (kNorm)
        unpack(xr[b][v], xf, T{});  // shared memory
      else
        unpack(__ldg(xr[b] + v), xf, T{});
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int e = 0; e < V; ++e) acc[r][b] = fmaf(wf[r][e], xf[e], acc[r][b]);
    }
  };

  int64_t v = lane;
  if (early) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) step(w0[u], v + 32 * u);
    v += 32 * kUnroll;
  }
  for (; v + 32 * (kUnroll - 1) < kv; v += 32 * kUnroll) {
    uint4 wv[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRows; ++r) wv[u][r] = ld_stream(wr[r] + v + 32 * u);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) step(wv[u], v + 32 * u);
  }
  for (; v < kv; v += 32) {
    uint4 wv[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wv[r] = ld_stream(wr[r] + v);
    step(wv, v);
  }

  pdl_trigger();
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int b = 0; b < kB; ++b) acc[r][b] = warp_sum(acc[r][b]);

      // Spread the stores over lanes: lane (r * kB + b) writes output (r, b).
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = row0 + r;
    const float br = (p.bias && row < p.n) ? p.bias[row] : 0.0f;
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      if (kSwiglu) {
        if (r % 2 == 0 && lane == (r * kB + b) % 32 && row < p.n && b < p.batch) {
          const float bu = p.bias ? p.bias[row + 1] : 0.0f;
          gemv_store<YT, true>(p, row, b, acc[r][b] + br, acc[r + 1 < kRows ? r + 1 : r][b] + bu);
        }
      } else if (lane == (r * kB + b) % 32 && row < p.n && b < p.batch) {
        gemv_store<YT, false>(p, row, b, acc[r][b] + br, 0.0f);
      }
    }
  }
}

// Any k, any alignment: one warp per row, scalar loads. Used for odd shapes (tests, tiny models).
template <class T, class YT, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32) gemv_scalar_kernel(const GemvParams p) {
  pdl_trigger();
  pdl_wait();
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * (kSwiglu ? 2 : 1);
  if (row0 >= p.n) return;
  const T* W = static_cast<const T*>(p.w);
  const T* X = static_cast<const T*>(p.x);
  float acc[2][kGemvMaxBatch];
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int b = 0; b < kGemvMaxBatch; ++b) acc[r][b] = 0.0f;
  constexpr int kR = kSwiglu ? 2 : 1;
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const T* wr = W + (row0 + r) * p.k;
    for (int64_t i = lane; i < p.k; i += 32) {
      const float wv = to_f32(wr[i]);
#pragma unroll
      for (int b = 0; b < kGemvMaxBatch; ++b)
        if (b < p.batch) acc[r][b] = fmaf(wv, to_f32(X[b * p.ldx + i]), acc[r][b]);
    }
  }
#pragma unroll
  for (int b = 0; b < kGemvMaxBatch; ++b) {
    if (b >= p.batch) break;
    const float a0 = warp_sum(acc[0][b]) + (p.bias ? p.bias[row0] : 0.0f);
    const float a1 = kSwiglu ? warp_sum(acc[1][b]) + (p.bias ? p.bias[row0 + 1] : 0.0f) : 0.0f;
    if (lane == 0) gemv_store<YT, kSwiglu>(p, row0, b, a0, a1);
  }
}

// ---- tensor-core path (batch 3..8, f16/bf16)
// ------------------------------------------------------------------ A block owns 16 rows; its 8 warps split
// k in 64-wide chunks (warp w: chunks w, w+8, ...). Per chunk a lane loads 16 consecutive elements of rows g
// and g+8 and of x row g (g = lane/4, t = lane%4, span 16t..16t+16): plain coalesced 16-byte loads. The dot
// product does not care about the order of k, so "logical" k of each m16n8k16 step s is mapped to physical k
// so that the A and B fragments are just words 2s and 2s+1 of those loads: logical {2t, 2t+1} <-> physical
// 16t+4s+{0,1}, logical {2t+8, 2t+9} <-> 16t+4s+{2,3}. No shuffles, no shared memory until the final
// cross-warp sum.
template <class T>
__device__ __forceinline__ void mma_m16n8k16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                             uint32_t a3, uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // launched only on sm_80+
#endif
}

constexpr int kMmaUnroll = 4;

template <class T, class YT, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32) gemv_mma_kernel(const GemvParams p) {
  __shared__ float red[kWarps][32][4];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t row0 = int64_t(blockIdx.x) * 16;
  const T* W = static_cast<const T*>(p.w);
  const T* wa = W + min(row0 + g, p.n - 1) * p.k;
  const T* wb = W + min(row0 + g + 8, p.n - 1) * p.k;
  pdl_wait();
  const bool has_x = g < p.batch;
  const T* xr = static_cast<const T*>(p.x) + int64_t(has_x ? g : 0) * p.ldx;
  const int64_t n_full = p.k / 64, n_chunks = (p.k + 63) / 64;
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  auto consume = [&](const uint4(&a)[2], const uint4(&b)[2], const uint4(&x)[2]) {
    const uint32_t aw[8] = {a[0].x, a[0].y, a[0].z, a[0].w, a[1].x, a[1].y, a[1].z, a[1].w};
    const uint32_t bw[8] = {b[0].x, b[0].y, b[0].z, b[0].w, b[1].x, b[1].y, b[1].z, b[1].w};
    const uint32_t xw[8] = {x[0].x, x[0].y, x[0].z, x[0].w, x[1].x, x[1].y, x[1].z, x[1].w};
#pragma unroll
    for (int s = 0; s < 4; ++s)
      mma_m16n8k16<T>(c, aw[2 * s], bw[2 * s], aw[2 * s + 1], bw[2 * s + 1], xw[2 * s], xw[2 * s + 1]);
  };
  const uint4 zero = make_uint4(0, 0, 0, 0);
  int64_t ch = warp;
  // Full chunks, kMmaUnroll of them in flight per warp, no guards.
  for (; ch + int64_t(kWarps) * (kMmaUnroll - 1) < n_full; ch += int64_t(kWarps) * kMmaUnroll) {
    uint4 a[kMmaUnroll][2], b[kMmaUnroll][2], x[kMmaUnroll][2];
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int64_t k0 = (ch + int64_t(u) * kWarps) * 64 + t * 16;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        a[u][h] = ld_stream(wa + k0 + 8 * h);
        b[u][h] = ld_stream(wb + k0 + 8 * h);
        x[u][h] =
            __ldg(reinterpret_cast<const uint4*>(xr + k0 + 8 * h));  // rows past the batch: zeroed below
      }
    }
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      if (!has_x) x[u][0] = x[u][1] = zero;
      consume(a[u], b[u], x[u]);
    }
  }
  // Remaining chunks one at a time; the last may be partial (k a multiple of 8).
  for (; ch < n_chunks; ch += kWarps) {
    uint4 a[2], b[2], x[2];
    const int64_t k0 = ch * 64 + t * 16;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const bool ok = k0 + 8 * h + 8 <= p.k;
      a[h] = ok ? ld_stream(wa + k0 + 8 * h) : zero;
      b[h] = ok ? ld_stream(wb + k0 + 8 * h) : zero;
      x[h] = ok && has_x ? __ldg(reinterpret_cast<const uint4*>(xr + k0 + 8 * h)) : zero;
    }
    consume(a, b, x);
  }
  pdl_trigger();
#pragma unroll
  for (int i = 0; i < 4; ++i) red[warp][lane][i] = c[i];
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += red[w][lane][i];
    c[i] = v;
  }
  // c[0..1]: row g, batches 2t, 2t+1; c[2..3]: row g+8.
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + g + (i >= 2 ? 8 : 0);
    const int b = 2 * t + (i & 1);
    const float br = (p.bias && row < p.n) ? p.bias[row] : 0.0f;
    if constexpr (kSwiglu) {
      // Row pairs (gate 2j, up 2j+1) sit in lanes g, g+1 (4 lanes apart).
      const float up = __shfl_down_sync(0xffffffffu, c[i], 4);
      if ((g & 1) == 0 && row < p.n && b < p.batch) {
        const float bu = p.bias ? p.bias[row + 1] : 0.0f;
        gemv_store<YT, true>(p, row, b, c[i] + br, up + bu);
      }
    } else {
      if (row < p.n && b < p.batch) gemv_store<YT, false>(p, row, b, c[i] + br, 0.0f);
    }
  }
}

template <class T, class YT, int kB, int kRows, int kUnroll>
cudaError_t launch_vec(const GemvParams& p, cudaStream_t stream) {
  const unsigned blocks = unsigned(ceil_div(p.n, int64_t(kWarps) * kRows));
  if constexpr (kB <= 2) {
    if (p.norm_w) {
      const size_t smem = size_t(kB) * size_t(p.k) * sizeof(T);
      if (p.swiglu)
        return launch_kernel(gemv_kernel<T, YT, kB, kRows, kUnroll, true, true>, dim3(blocks),
                             dim3(kWarps * 32), smem, stream, p);
      return launch_kernel(gemv_kernel<T, YT, kB, kRows, kUnroll, false, true>, dim3(blocks),
                           dim3(kWarps * 32), smem, stream, p);
    }
  }
  if (p.swiglu)
    return launch_kernel(gemv_kernel<T, YT, kB, kRows, kUnroll, true, false>, dim3(blocks), dim3(kWarps * 32),
                         0, stream, p);
  return launch_kernel(gemv_kernel<T, YT, kB, kRows, kUnroll, false, false>, dim3(blocks), dim3(kWarps * 32),
                       0, stream, p);
}

template <class T, class YT>
cudaError_t launch_typed(const GemvParams& p, cudaStream_t stream) {
  constexpr int V = kVec<T>;
  if (p.norm_w) {  // fused RMSNorm: only the CUDA-core kernel for batch <= 2 has the prologue
    if (!gemv_norm_fusable(p)) return cudaErrorInvalidValue;
    if (p.batch <= 1) return launch_vec<T, YT, 1, 2, 4>(p, stream);
    return launch_vec<T, YT, 2, 2, 4>(p, stream);
  }
  const bool vec = p.k % V == 0 && p.ldx % V == 0 && aligned16(p.w) && aligned16(p.x);
  if (!vec) {
    const int rows_per_warp = p.swiglu ? 2 : 1;
    const unsigned blocks = unsigned(ceil_div(p.n, int64_t(kWarps) * rows_per_warp));
    if (p.swiglu)
      return launch_kernel(gemv_scalar_kernel<T, YT, true>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
    return launch_kernel(gemv_scalar_kernel<T, YT, false>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
  }
  if constexpr (!std::is_same_v<T, float>) {
    int dev = 0, major = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    if (p.batch >= p.mma_min_batch && major >= 8) {
      const unsigned blocks = unsigned(ceil_div(p.n, 16));
      if (p.swiglu)
        return launch_kernel(gemv_mma_kernel<T, YT, true>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
      return launch_kernel(gemv_mma_kernel<T, YT, false>, dim3(blocks), dim3(kWarps * 32), 0, stream, p);
    }
  }
  // Rows per warp grow with the batch so each x vector loaded from L1 serves more weight rows.
  if (p.batch <= 1) return launch_vec<T, YT, 1, 2, 4>(p, stream);
  if (p.batch <= 2) return launch_vec<T, YT, 2, 2, 4>(p, stream);
  if (p.batch <= 4) return launch_vec<T, YT, 4, 4, 2>(p, stream);
  return launch_vec<T, YT, 8, 4, 2>(p, stream);
}

}  // namespace

bool gemv_norm_fusable(const GemvParams& p) {
  const size_t es = dtype_size(p.wt);
  return (p.wt == DType::f32 || p.wt == DType::f16 || p.wt == DType::bf16) && p.batch >= 1 && p.batch <= 2 &&
         p.k % 8 == 0 && p.ld_norm_x % 4 == 0 && aligned16(p.w) && aligned16(p.norm_x) &&
         aligned16(p.norm_w) && size_t(p.batch) * size_t(p.k) * es <= 48 * 1024;
}

cudaError_t gemv(const GemvParams& p, cudaStream_t stream) {
  if (p.n <= 0 || p.batch <= 0) return cudaSuccess;
  if (p.batch > kGemvMaxBatch || p.k <= 0 || (p.swiglu && p.n % 2 != 0) ||
      (p.beta != 0.0f && p.yt != DType::f32))
    return cudaErrorInvalidValue;
  return dispatch_float(p.wt, [&](auto wtag) {
    using T = decltype(wtag);
    return dispatch_float(p.yt, [&](auto ytag) {
      using YT = decltype(ytag);
      return launch_typed<T, YT>(p, stream);
    });
  });
}

}  // namespace tailor::cuda
