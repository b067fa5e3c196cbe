// Small element-wise ops the fused kernels do not cover.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tailor::cuda {

// x[r, :] += b[:] * scale for r < rows (x f32 [rows, cols]): a bias after a cuBLASLt product that accumulated
// into the residual.
cudaError_t add_bias_rows(float* x, const float* b, float scale, int64_t rows, int64_t cols,
                          cudaStream_t stream);

// *count += number of non-finite values in x[0, n) (device counter): the first-pass overflow check.
cudaError_t count_nonfinite(const float* x, int64_t n, unsigned int* count, cudaStream_t stream);

}  // namespace tailor::cuda
