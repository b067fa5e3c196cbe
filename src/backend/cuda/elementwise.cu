#include "backend/cuda/common.cuh"
#include "backend/cuda/elementwise.cuh"

namespace tailor::cuda {

namespace {

__global__ void add_bias_rows_kernel(float* __restrict__ x, const float* __restrict__ b, float scale,
                                     int64_t rows, int64_t cols) {
  pdl_trigger();
  pdl_wait();
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] += b[i % cols] * scale;
}

__global__ void count_nonfinite_kernel(const float* __restrict__ x, int64_t n, unsigned int* count) {
  pdl_trigger();
  pdl_wait();
  unsigned int c = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    c += isfinite(x[i]) ? 0u : 1u;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  if ((threadIdx.x & 31) == 0 && c) atomicAdd(count, c);
}

}  // namespace

cudaError_t add_bias_rows(float* x, const float* b, float scale, int64_t rows, int64_t cols,
                          cudaStream_t stream) {
  const int64_t total = rows * cols;
  if (total <= 0) return cudaSuccess;
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(total, 256), 4096));
  return launch_kernel(add_bias_rows_kernel, dim3(blocks), dim3(256), 0, stream, x, b, scale, rows, cols);
}

cudaError_t count_nonfinite(const float* x, int64_t n, unsigned int* count, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(n, 256), 1024));
  return launch_kernel(count_nonfinite_kernel, dim3(blocks), dim3(256), 0, stream, x, n, count);
}

}  // namespace tailor::cuda
