#include "backend/cuda/common.cuh"
#include "backend/cuda/gemv.cuh"

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
template <class T, class YT, int kB, int kRows, int kUnroll, bool kSwiglu>
__global__ void __launch_bounds__(kWarps * 32, kB <= 2 ? 2 : 1) gemv_kernel(const GemvParams p) {
  constexpr int V = kVec<T>;
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * kRows;
  if (row0 >= p.n) return;
  const int64_t kv = p.k / V;
  const T* W = static_cast<const T*>(p.w);
  const T* X = static_cast<const T*>(p.x);
  const uint4* wr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wr[r] = reinterpret_cast<const uint4*>(W + min(row0 + r, p.n - 1) * p.k);
  const uint4* xr[kB];
#pragma unroll
  for (int b = 0; b < kB; ++b)
    xr[b] = reinterpret_cast<const uint4*>(X + int64_t(min(b, p.batch - 1)) * p.ldx);

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
      unpack(__ldg(xr[b] + v), xf, T{});
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int e = 0; e < V; ++e) acc[r][b] = fmaf(wf[r][e], xf[e], acc[r][b]);
    }
  };

  int64_t v = lane;
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

template <class T, class YT, int kB, int kRows, int kUnroll>
cudaError_t launch_vec(const GemvParams& p, cudaStream_t stream) {
  const unsigned blocks = unsigned(ceil_div(p.n, int64_t(kWarps) * kRows));
  if (p.swiglu)
    gemv_kernel<T, YT, kB, kRows, kUnroll, true><<<blocks, kWarps * 32, 0, stream>>>(p);
  else
    gemv_kernel<T, YT, kB, kRows, kUnroll, false><<<blocks, kWarps * 32, 0, stream>>>(p);
  return launch_status();
}

template <class T, class YT>
cudaError_t launch_typed(const GemvParams& p, cudaStream_t stream) {
  constexpr int V = kVec<T>;
  const bool vec = p.k % V == 0 && p.ldx % V == 0 && aligned16(p.w) && aligned16(p.x);
  if (!vec) {
    const int rows_per_warp = p.swiglu ? 2 : 1;
    const unsigned blocks = unsigned(ceil_div(p.n, int64_t(kWarps) * rows_per_warp));
    if (p.swiglu)
      gemv_scalar_kernel<T, YT, true><<<blocks, kWarps * 32, 0, stream>>>(p);
    else
      gemv_scalar_kernel<T, YT, false><<<blocks, kWarps * 32, 0, stream>>>(p);
    return launch_status();
  }
  // Rows per warp grow with the batch so each x vector loaded from L1 serves more weight rows.
  if (p.batch <= 1) return launch_vec<T, YT, 1, 2, 4>(p, stream);
  if (p.batch <= 2) return launch_vec<T, YT, 2, 2, 4>(p, stream);
  if (p.batch <= 4) return launch_vec<T, YT, 4, 4, 2>(p, stream);
  return launch_vec<T, YT, 8, 4, 2>(p, stream);
}

}  // namespace

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
