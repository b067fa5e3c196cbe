#include <climits>

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

// Best (value, index) of row[begin, end) over the block; every thread gets it. vec: row is 16-byte aligned
// and begin a multiple of 4.
__device__ void block_argmax(const float* __restrict__ row, int64_t begin, int64_t end, bool vec, float& bv,
                             int& bi) {
  __shared__ float sv[32];
  __shared__ int si[32];
  bv = -INFINITY;
  bi = INT_MAX;  // sentinel above every index
  int64_t j = begin + threadIdx.x;
  if (vec) {
    const int64_t n4 = (end - begin) / 4;
    const float4* r4 = reinterpret_cast<const float4*>(row + begin);
    for (int64_t c = threadIdx.x; c < n4; c += blockDim.x) {
      const float4 v = r4[c];
      const int base = int(begin + 4 * c);
      better(bv, bi, v.x, base);
      better(bv, bi, v.y, base + 1);
      better(bv, bi, v.z, base + 2);
      better(bv, bi, v.w, base + 3);
    }
    j = begin + 4 * n4 + threadIdx.x;
  }
  for (; j < end; j += blockDim.x) better(bv, bi, row[j], int(j));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    better(bv, bi, ov, oi);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = int(blockDim.x >> 5);
  if (lane == 0) {
    sv[warp] = bv;
    si[warp] = bi;
  }
  __syncthreads();
  bv = lane < n_warps ? sv[lane] : -INFINITY;
  bi = lane < n_warps ? si[lane] : INT_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    better(bv, bi, ov, oi);
  }
}

__global__ void __launch_bounds__(kThreads)
    argmax_kernel(int32_t* __restrict__ ids, const float* __restrict__ logits, int64_t ld, int64_t n_vocab) {
  pdl_trigger();
  pdl_wait();
  const bool vec = (ld % 4 == 0) && ((reinterpret_cast<uintptr_t>(logits) & 15u) == 0);
  float bv;
  int bi;
  block_argmax(logits + int64_t(blockIdx.x) * ld, 0, n_vocab, vec, bv, bi);
  if (threadIdx.x == 0) ids[blockIdx.x] = bi >= n_vocab ? 0 : bi;
}

// grid: (n_rows, kArgmaxParts). Part q of a row covers a 4-aligned slice; the last part to finish merges.
__global__ void __launch_bounds__(kThreads / 2)
    argmax_parts_kernel(int32_t* __restrict__ ids, const float* __restrict__ logits, int64_t ld,
                        int64_t n_vocab, float2* __restrict__ partials, unsigned int* __restrict__ counters) {
  __shared__ bool is_last;
  pdl_trigger();
  pdl_wait();
  const int64_t r = blockIdx.x;
  const int64_t slice = ((n_vocab + kArgmaxParts - 1) / kArgmaxParts + 3) / 4 * 4;
  const int64_t begin = min(int64_t(blockIdx.y) * slice, n_vocab), end = min(begin + slice, n_vocab);
  const bool vec = (ld % 4 == 0) && ((reinterpret_cast<uintptr_t>(logits) & 15u) == 0);
  float bv;
  int bi;
  block_argmax(logits + r * ld, begin, end, vec, bv, bi);
  if (threadIdx.x == 0) {
    partials[r * kArgmaxParts + blockIdx.y] = make_float2(bv, __int_as_float(bi));
    __threadfence();
    is_last = atomicAdd(counters + r, 1u) == kArgmaxParts - 1;
  }
  __syncthreads();
  if (!is_last || threadIdx.x != 0) return;
  __threadfence();
  bv = -INFINITY;
  bi = INT_MAX;
  for (int q = 0; q < kArgmaxParts; ++q) {
    const float2 pv = __ldcg(partials + r * kArgmaxParts + q);
    better(bv, bi, pv.x, __float_as_int(pv.y));
  }
  ids[r] = bi >= n_vocab ? 0 : bi;
  counters[r] = 0;  // ready for the next launch
}

}  // namespace

size_t argmax_workspace_bytes(int64_t n_rows) {
  return size_t(n_rows) * kArgmaxParts * sizeof(float2);
}

cudaError_t argmax(int32_t* ids, const float* logits, int64_t ld, int64_t n_rows, int64_t n_vocab,
                   cudaStream_t stream, void* partials, unsigned int* counters) {
  if (n_rows <= 0) return cudaSuccess;
  if (n_vocab <= 0 || n_vocab >= (int64_t(1) << 31) || n_rows > 65535) return cudaErrorInvalidValue;
  if (partials && counters)
    return launch_kernel(argmax_parts_kernel, dim3(unsigned(n_rows), kArgmaxParts), dim3(kThreads / 2), 0,
                         stream, ids, logits, ld, n_vocab, static_cast<float2*>(partials), counters);
  return launch_kernel(argmax_kernel, dim3(unsigned(n_rows)), dim3(kThreads), 0, stream, ids, logits, ld,
                       n_vocab);
}

}  // namespace tailor::cuda
