#include "backend/cuda/common.cuh"
#include "backend/cuda/convert.cuh"

namespace tailor::cuda {

namespace {

template <class D, class S>
__global__ void convert_rows_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t rows,
                                    int64_t cols, int64_t step, int64_t off, unsigned long long* overflow) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    const float v = to_f32(src[i]);
    if constexpr (sizeof(D) == 2 && !std::is_same_v<D, __nv_bfloat16>) {
      if (overflow && fabsf(v) > 65504.0f && isfinite(v)) atomicAdd(overflow, 1ull);
    }
    dst[(r * step + off) * cols + c] = from_f32<D>(v);
  }
}

}  // namespace

cudaError_t convert_rows(void* dst, DType dst_t, const void* src, DType src_t, int64_t rows, int64_t cols,
                         int64_t dst_row_step, int64_t dst_row_off, unsigned long long* overflow,
                         cudaStream_t stream) {
  const int64_t total = rows * cols;
  if (total <= 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(total, threads), 4096));
  return dispatch_float(dst_t, [&](auto dtag) {
    using D = decltype(dtag);
    return dispatch_float(src_t, [&](auto stag) {
      using S = decltype(stag);
      // cudaGetLastError() also returns errors of earlier, unrelated runtime calls (already reported by
      // them); clear those so that only this launch's own error is returned.
      (void)cudaGetLastError();
      convert_rows_kernel<D, S><<<blocks, threads, 0, stream>>>(
          static_cast<D*>(dst), static_cast<const S*>(src), rows, cols, dst_row_step, dst_row_off, overflow);
      return launch_status();
    });
  });
}

}  // namespace tailor::cuda
