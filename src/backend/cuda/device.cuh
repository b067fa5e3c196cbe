// GPU discovery and capability checks with user-facing messages (never a raw CUDA error code), and the
// device-to-device copy bandwidth that `tailor bench` uses as its ceiling.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace tailor::cuda {

struct DeviceProps {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int n_sm = 0;
  uint64_t mem_total = 0, mem_free = 0;
};

// Selects `index`, checks that this binary has kernels for its architecture and that `weight_dtype` runs on
// it (bf16 needs sm_80+). Errors: no driver / no device / no kernel image / bf16 on an old GPU, each naming
// the fix.
Result<DeviceProps> open_device(int index, DType weight_dtype);

// Programmatic dependent launch for the decode kernels (overlaps each kernel's launch with the previous one's
// tail; sm_90+). Off by default; the runner turns it on for Hopper and newer. Process-wide.
void set_programmatic_launch(bool on);

// "cudaErrorMemoryAllocation: out of memory" style text for a cudaError_t value (as int, so this header needs
// no CUDA include).
std::string cuda_error_text(int err);

// Free and total memory of the current GPU (bytes), as cudaMemGetInfo reports them.
struct MemInfo {
  uint64_t free = 0, total = 0;
};
MemInfo memory_info();

// Measures device-to-device cudaMemcpy bandwidth (bytes read + written per second) over `bytes`, median of
// reps.
Result<double> measure_copy_bandwidth(uint64_t bytes, int reps);

}  // namespace tailor::cuda
