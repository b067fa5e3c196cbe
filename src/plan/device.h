// What the machine offers: CPU (features, cores, memory the process may really use) and GPUs (compute
// capability, free memory, bandwidth, which tensor-core dtypes exist). Either probed from this machine or
// taken from a simulated profile (built-in name or JSON file), so every plan can be tested anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/status.h"

namespace tailor {

// Where kernels run. metal exists only in simulated profiles (tailor has no Metal backend yet), so plans
// for Apple machines can be checked here.
enum class Backend : uint8_t { cpu = 0, cuda, metal };
const char* backend_name(Backend b);

struct CpuInfo {
  std::string model;  // "Intel(R) Xeon(R) Platinum 8480+"
  int cores = 0;      // logical CPUs this process may use (affinity and cgroup quota applied)
  CpuFeatures features;
  uint64_t mem_total = 0;      // bytes: MemTotal, or the cgroup limit when lower
  uint64_t mem_available = 0;  // bytes the process can use without swapping (MemAvailable, cgroup headroom)
  std::string mem_source;      // where mem_available came from ("/proc/meminfo", "cgroup v2 memory.max", ...)
  double bandwidth_gbs = 0;    // DRAM bandwidth estimate (profiles only; 0 = unknown)
};

struct GpuInfo {
  Backend backend = Backend::cuda;
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // CUDA compute capability (0.0 for metal)
  uint64_t mem_total = 0;          // bytes
  uint64_t mem_free = 0;           // bytes usable now (metal: the GPU working-set limit)
  double bandwidth_gbs = 0;        // peak DRAM bandwidth estimate
  std::string bandwidth_source;    // "memory clock x bus width", "table", "profile"
  bool unified_memory = false;     // GPU memory is host RAM (Apple): both budgets draw on one pool
  // Native (tensor-core / hardware kernel) support. A dtype without it is emulated: slow.
  bool bf16 = false, fp16 = false, fp8 = false;
  int cc() const { return cc_major * 10 + cc_minor; }  // 86 for sm_86
  std::string arch() const;                            // "sm_86", or "metal"
};

struct DeviceInfo {
  std::string source;  // "probe", "profile nvidia-t4", "profile file /path/box.json"
  std::string name;    // profile name ("nvidia-t4") or "this machine"
  CpuInfo cpu;
  std::vector<GpuInfo> gpus;
  std::string no_gpu_reason;  // why gpus is empty ("built without CUDA", "no CUDA driver: ...")
};

// Probes this machine. `root` prefixes /proc and /sys paths (tests point it at a fake tree); GPUs are asked
// through the CUDA runtime when tailor was built with CUDA, and a missing driver or device is simply "none".
DeviceInfo probe_devices();
CpuInfo probe_cpu(const std::string& root = "");

// Simulated profiles. `name_or_file` is a built-in name (see device_profile_names) or a path to a JSON file
// (format in docs/PLAN.md). Unknown names give an error listing the known ones.
Result<DeviceInfo> device_profile(const std::string& name_or_file);
std::vector<std::string> device_profile_names();
// Parses a profile from JSON text; `what` names the source in errors.
Result<DeviceInfo> parse_device_profile(const std::string& json_text, const std::string& what);

// Human-readable block and JSON text for `tailor plan --probe`.
std::string format_device_info(const DeviceInfo& d);
std::string device_info_json(const DeviceInfo& d);

// Bytes as "15.23 GB" (decimal GB, as model sizes are usually quoted).
std::string format_bytes(uint64_t bytes);

}  // namespace tailor
