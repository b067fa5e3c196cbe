#include "backend/cuda/argmax.cuh"
#include "backend/cuda/common.cuh"

namespace tailor::cuda {

namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ void better(float& bv, int& bi, float v, int i) {
  // NaN compares false: it never replaces a value, and a NaN best is replaced by any number.
  if (v > bv || (v == bv && i < bi) || (bv != bv && v == v)) {
    bv = v;
    bi = i;
  }
}

__global__ void __launch_bounds__(kThreads)
    argmax_kernel(int32_t* __restrict__ ids, const float* __restrict__ logits, int64_t ld, int64_t n_vocab) {
  __shared__ float sv[32];
  __shared__ int si[32];
  pdl_trigger();
  pdl_wait();
  const float* row = logits + int64_t(blockIdx.x) * ld;
  float bv = -INFINITY;
  int bi = int(n_vocab);  // sentinel above every index
  const bool vec = (ld % 4 == 0) && ((reinterpret_cast<uintptr_t>(logits) & 15u) == 0);
  int64_t j = threadIdx.x;
  if (vec) {
    const int64_t n4 = n_vocab / 4;
    for (int64_t c = threadIdx.x; c < n4; c += kThreads) {
      const float4 v = reinterpret_cast<const float4*>(row)[c];
      better(bv, bi, v.x, int(4 * c));
      better(bv, bi, v.y, int(4 * c + 1));
      better(bv, bi, v.z, int(4 * c + 2));
      better(bv, bi, v.w, int(4 * c + 3));
    }
    j = 4 * n4 + threadIdx.x;
  }
  for (; j < n_vocab; j += kThreads) better(bv, bi, row[j], int(j));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    better(bv, bi, ov, oi);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = bv;
    si[warp] = bi;
  }
  __syncthreads();
  if (warp == 0) {
    bv = sv[lane];
    bi = si[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      better(bv, bi, ov, oi);
    }
    if (lane == 0) ids[blockIdx.x] = bi >= n_vocab ? 0 : bi;
  }
}

}  // namespace

cudaError_t argmax(int32_t* ids, const float* logits, int64_t ld, int64_t n_rows, int64_t n_vocab,
                   cudaStream_t stream) {
  if (n_rows <= 0) return cudaSuccess;
  if (n_vocab <= 0 || n_vocab >= (int64_t(1) << 31)) return cudaErrorInvalidValue;
  return launch_kernel(argmax_kernel, dim3(unsigned(n_rows)), dim3(kThreads), 0, stream, ids, logits, ld,
                       n_vocab);
}

}  // namespace tailor::cuda
