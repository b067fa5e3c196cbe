// Dtype conversion of weight rows on the GPU (used once at load), with optional row interleaving so two
// matrices can be fused into one (gate/up) without a second pass.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace tailor::cuda {

// dst[(r * dst_row_step + dst_row_off) * cols + c] = src[r * cols + c], converted from src_t to dst_t
// (f32/f16/bf16, round to nearest even). When dst_t is f16, values beyond ±65504 become ±inf and are counted
// in *overflow (device counter; may be nullptr).
cudaError_t convert_rows(void* dst, DType dst_t, const void* src, DType src_t, int64_t rows, int64_t cols,
                         int64_t dst_row_step, int64_t dst_row_off, unsigned long long* overflow,
                         cudaStream_t stream);

}  // namespace tailor::cuda
