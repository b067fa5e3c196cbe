#include "backend/cuda/common.cuh"
#include "backend/cuda/embedding.cuh"

namespace tailor::cuda {

namespace {

// One block per token; each thread copies 8-element chunks (16-byte loads when the row allows).
template <class T, bool kVectorized>
__global__ void embedding_kernel(float* __restrict__ out, const T* __restrict__ table, int64_t n_vocab,
                                 const int32_t* __restrict__ ids, int64_t dim, float scale) {
  pdl_trigger();
  pdl_wait();
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  float* o = out + i * dim;
  if (id < 0 || id >= n_vocab) {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) o[j] = 0.0f;
    return;
  }
  const T* row = table + int64_t(id) * dim;
  if constexpr (kVectorized) {
    for (int64_t j = int64_t(threadIdx.x) * 8; j < dim; j += int64_t(blockDim.x) * 8) {
      float f[8];
      load8(row + j, f);
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] *= scale;
      store8(o + j, f);
    }
  } else {
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) o[j] = to_f32(row[j]) * scale;
  }
}

}  // namespace

cudaError_t embedding(float* out, const void* table, DType t, int64_t n_vocab, const int32_t* ids, int64_t n,
                      int64_t dim, float scale, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  return dispatch_float(t, [&](auto tag) {
    using T = decltype(tag);
    const bool vec = dim % 8 == 0 && aligned16(table) && aligned16(out);
    const int threads =
        int(std::min<int64_t>(256, std::max<int64_t>(32, ceil_div(vec ? dim / 8 : dim, 32) * 32)));
    if (vec)
      return launch_kernel(embedding_kernel<T, true>, dim3(unsigned(n)), dim3(threads), 0, stream, out,
                           static_cast<const T*>(table), n_vocab, ids, dim, scale);
    else
      return launch_kernel(embedding_kernel<T, false>, dim3(unsigned(n)), dim3(threads), 0, stream, out,
                           static_cast<const T*>(table), n_vocab, ids, dim, scale);
  });
}

}  // namespace tailor::cuda
