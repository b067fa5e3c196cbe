#include "backend/cuda/common.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace tailor::cuda {

namespace {

constexpr int kMaxCached = 8;  // 8-element chunks each thread keeps in registers between the two passes

// One block per row. The row is read once into registers (8 elements per chunk), reduced, then scaled and
// written; rows wider than blockDim*8*kMaxCached fall back to re-reading x.
template <class OutT, bool kVectorized>
__global__ void __launch_bounds__(512)
    rms_norm_kernel(OutT* __restrict__ out, float* __restrict__ x, const float* __restrict__ delta,
                    float delta_scale, const float* __restrict__ w, const int32_t* __restrict__ rows,
                    int64_t dim, float eps) {
  __shared__ float red[32];
  pdl_trigger();
  pdl_wait();
  const int64_t r = blockIdx.x;
  const int64_t s = rows ? rows[r] : r;
  float* xr = x + s * dim;
  const float* dr = delta ? delta + s * dim : nullptr;
  OutT* o = out + r * dim;
  float ss = 0.0f;
  if constexpr (kVectorized) {
    float v[kMaxCached][8];
    const int64_t step = int64_t(blockDim.x) * 8;
#pragma unroll
    for (int c = 0; c < kMaxCached; ++c) {
      const int64_t j = int64_t(threadIdx.x) * 8 + c * step;
      if (j < dim) {
        load8(xr + j, v[c]);
        if (dr) {
          float d[8];
          load8(dr + j, d);
#pragma unroll
          for (int e = 0; e < 8; ++e) v[c][e] += d[e] * delta_scale;
          store8(xr + j, v[c]);
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += v[c][e] * v[c][e];
      }
    }
    for (int64_t j = int64_t(threadIdx.x) * 8 + kMaxCached * step; j < dim; j += step) {  // very wide rows
      float t[8];
      load8(xr + j, t);
      if (dr) {
        float d[8];
        load8(dr + j, d);
#pragma unroll
        for (int e = 0; e < 8; ++e) t[e] += d[e] * delta_scale;
        store8(xr + j, t);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += t[e] * t[e];
    }
    const float inv = rsqrtf(block_sum(ss, red) / float(dim) + eps);
#pragma unroll
    for (int c = 0; c < kMaxCached; ++c) {
      const int64_t j = int64_t(threadIdx.x) * 8 + c * step;
      if (j < dim) {
        float g[8];
        load8(w + j, g);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[c][e] = v[c][e] * inv * g[e];
        store8(o + j, v[c]);
      }
    }
    for (int64_t j = int64_t(threadIdx.x) * 8 + kMaxCached * step; j < dim; j += step) {
      float t[8], g[8];
      load8(xr + j, t);
      load8(w + j, g);
#pragma unroll
      for (int e = 0; e < 8; ++e) t[e] = t[e] * inv * g[e];
      store8(o + j, t);
    }
  } else {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      float v = xr[j];
      if (dr) {
        v += dr[j] * delta_scale;
        xr[j] = v;
      }
      ss += v * v;
    }
    const float inv = rsqrtf(block_sum(ss, red) / float(dim) + eps);
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) o[j] = from_f32<OutT>(xr[j] * inv * w[j]);
  }
}

}  // namespace

cudaError_t rms_norm(void* out, DType out_t, float* x, const float* delta, float delta_scale, const float* w,
                     const int32_t* rows, int64_t n_rows, int64_t dim, float eps, cudaStream_t stream) {
  if (n_rows <= 0) return cudaSuccess;
  return dispatch_float(out_t, [&](auto tag) {
    using T = decltype(tag);
    const bool vec =
        dim % 8 == 0 && aligned16(out) && aligned16(x) && aligned16(w) && (!delta || aligned16(delta));
    int threads;
    // Enough threads that each keeps a few 8-element chunks in registers; at most 512 (the register budget of
    // kMaxCached chunks per thread); wider rows re-read x in the fallback loop.
    if (vec)
      threads = int(std::min<int64_t>(512, std::max<int64_t>(32, ceil_div(ceil_div(dim, 8), 4 * 32) * 32)));
    else
      threads = int(std::min<int64_t>(512, std::max<int64_t>(32, ceil_div(dim, 32 * 4) * 32)));
    T* o = static_cast<T*>(out);
    auto* k = vec ? rms_norm_kernel<T, true> : rms_norm_kernel<T, false>;
    return launch_kernel(k, dim3(unsigned(n_rows)), dim3(threads), 0, stream, o, x, delta, delta_scale, w,
                         rows, dim, eps);
  });
}

}  // namespace tailor::cuda
