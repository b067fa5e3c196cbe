#include "backend/cuda/common.cuh"
#include "backend/cuda/silu_mul.cuh"

namespace tailor::cuda {

namespace {

template <class OutT, class InT>
__global__ void silu_mul_kernel(OutT* __restrict__ out, const InT* __restrict__ gu,
                                const float* __restrict__ bias, int64_t n_tok, int64_t n_ff) {
  pdl_trigger();
  pdl_wait();
  const int64_t total = n_tok * n_ff;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = idx / n_ff, i = idx - t * n_ff;
    const InT* p = gu + t * 2 * n_ff + 2 * i;
    float g = to_f32(p[0]), u = to_f32(p[1]);
    if (bias) {
      g += bias[2 * i];
      u += bias[2 * i + 1];
    }
    out[idx] = from_f32<OutT>(silu(g) * u);
  }
}

}  // namespace

cudaError_t silu_mul(void* out, DType out_t, const void* gate_up, DType in_t, const float* bias,
                     int64_t n_tok, int64_t n_ff, cudaStream_t stream) {
  const int64_t total = n_tok * n_ff;
  if (total <= 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(total, threads), 65535LL * 8));
  return dispatch_float(out_t, [&](auto otag) {
    using OutT = decltype(otag);
    return dispatch_float(in_t, [&](auto itag) {
      using InT = decltype(itag);
      return launch_kernel(silu_mul_kernel<OutT, InT>, dim3(blocks), dim3(threads), 0, stream,
                           static_cast<OutT*>(out), static_cast<const InT*>(gate_up), bias, n_tok, n_ff);
    });
  });
}

}  // namespace tailor::cuda
