// Precision policy: which kernels each backend has for each op class and dtype, and how fast they are.
// The Plan asks this table; it never assumes a kernel exists. A kernel that exists but is emulated (bf16 on
// sm_75, bf16 on Metal M1-M3, anything on a CPU without AVX2) is "slow" and becomes a plan warning.
#pragma once

#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "plan/device.h"

namespace tailor {

enum class OpClass : uint8_t { matmul = 0, attention, norm, kv_cache, embedding };
const char* op_class_name(OpClass op);

struct KernelChoice {
  bool exists = false;         // false: tailor has no kernel for this dtype here (use another dtype)
  bool slow = false;           // true: runs, but emulated / scalar (a warning, never silent)
  std::string kernel;          // "cuda gemv + cublasLt bf16 tensor cores"
  DType compute = DType::f32;  // dtype of the multiply inputs (accumulation is always f32)
  std::string note;            // why slow / why missing
};

// One concrete execution target: a backend plus the facts about it that kernels depend on.
struct Target {
  Backend backend = Backend::cpu;
  CpuFeatures cpu;            // for Backend::cpu
  GpuInfo gpu;                // for cuda / metal
  std::string label() const;  // "cpu", "cuda:0 (sm_86)", "metal (Apple M2 GPU)"
};
Target cpu_target(const DeviceInfo& d);
Target gpu_target(const GpuInfo& g);

// The kernel for op `op` reading data (weights / KV cache) of dtype `t` on `target`.
KernelChoice kernel_for(const Target& target, OpClass op, DType t);

// Smallest compute capability the CUDA backend runs on (f16 tensor cores).
constexpr int kMinCudaCC = 70;
// f16's largest finite value; a tensor whose max |w| exceeds it cannot be stored as f16.
constexpr float kF16Max = 65504.0f;

// The storage dtype for a matrix stored as `stored` on `target` when the user did not choose: the stored
// dtype if its kernel is fast there; else bf16 where bf16 is native; else f16. f32 checkpoints get a half
// type (a whole model in f32 only when asked).
DType preferred_storage(const Target& target, DType stored);
// The dtype a tensor that cannot be f16 (range) is kept in instead: bf16 where native, else f32.
DType wider_than_f16(const Target& target);
// The dtype of the KV cache on `target` when the matrices there are stored as `weights`.
DType kv_dtype_for(const Target& target, DType weights);

// Parses a --dtype value. Knows every dtype name; only f32 / f16 / bf16 are storage types today, the
// others give an error saying so. The error lists the valid names.
Result<DType> parse_storage_dtype(const std::string& name);

}  // namespace tailor
