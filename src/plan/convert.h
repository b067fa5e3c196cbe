// Range checks and dtype conversion of weights at load, with guards: a conversion never turns a finite
// weight into Inf silently (bf16 -> f16 overflows beyond ±65504), and activations are checked for
// non-finite values on the first forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "io/safetensors.h"

namespace tailor {

struct RangeStats {
  float max_abs = 0;         // largest finite |x|
  uint64_t n_nonfinite = 0;  // NaN or ±Inf elements
};

// max |x| over n elements of a float buffer (f32, f16, bf16), multithreaded for large buffers. Works on the
// bit patterns (|x| order equals the order of the sign-cleared bits), so it is exact and vectorises.
Result<RangeStats> range_stats(const void* data, DType t, uint64_t n);

// A converted copy of one tensor, owned (64-byte aligned).
struct ConvertedTensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::shared_ptr<uint8_t> data;  // dtype_row_bytes(dtype, numel) bytes
  uint64_t nbytes = 0;
  float max_abs = 0;  // of the source
  TensorView view() const { return TensorView(data.get(), dtype, shape); }
};

// Converts `src` to `target` (f32, f16 or bf16) into an owned buffer. Fails, naming the tensor, when a
// finite source value would become ±Inf in `target` (e.g. |w| > 65504 to f16: keep that tensor wider, as the
// Plan does) or when the source already holds NaN/Inf (a corrupt checkpoint). Never returns Inf silently.
Result<ConvertedTensor> convert_for_storage(const SafeTensor& src, DType target);

// The same into a caller's buffer (e.g. pinned staging before a GPU upload) of at least
// dtype_row_bytes(target, numel) bytes. Returns the source's range statistics.
Result<RangeStats> convert_into(const SafeTensor& src, DType target, void* dst, uint64_t dst_bytes);

// Checks activations for NaN/Inf. `where` names the layer and op ("layer 3 mlp.down_proj output"); the error
// counts them, gives the first index and suggests the fix (f16 overflow -> --dtype bf16 or f32).
Status check_finite(std::span<const float> x, const std::string& where);

}  // namespace tailor
