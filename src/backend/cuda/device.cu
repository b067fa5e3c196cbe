#include <algorithm>
#include <vector>

#include "backend/cuda/common.cuh"
#include "backend/cuda/device.cuh"

namespace tailor::cuda {

namespace {

__global__ void probe_kernel(int* p) {
  if (p) *p = 1;
}

}  // namespace

namespace {
bool g_pdl = false;
}

void set_programmatic_launch(bool on) {
  g_pdl = on;
}
bool programmatic_launch_enabled() {
  return g_pdl;
}

std::string cuda_error_text(int err) {
  const cudaError_t e = static_cast<cudaError_t>(err);
  return cat(cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}

Result<DeviceProps> open_device(int index, DType weight_dtype) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
    cudaGetLastError();
    return unsupported(
        "no CUDA device found: this machine has no NVIDIA GPU visible to the driver; use the CPU backend");
  }
  if (e == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    return unsupported(
        cat("no usable NVIDIA driver: it is missing, or older than the CUDA ", CUDART_VERSION / 1000, ".",
            CUDART_VERSION % 1000 / 10,
            " runtime tailor was built with; install or update the driver, or use the CPU backend"));
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    return unsupported(cat("the CUDA driver could not be initialised (", cudaGetErrorString(e),
                           "); check that the NVIDIA driver is loaded, or use the CPU backend"));
  }
  if (index < 0 || index >= n) return invalid_argument(cat("GPU ", index, " does not exist (", n, " found)"));
  if ((e = cudaSetDevice(index)) != cudaSuccess) {
    cudaGetLastError();
    return unsupported(cat("cannot use GPU ", index, ": ", cudaGetErrorString(e)));
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, index);
  DeviceProps d;
  d.index = index;
  d.name = prop.name;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.n_sm = prop.multiProcessorCount;
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  d.mem_free = free_b;
  d.mem_total = total_b;
  // Does this binary carry machine code (or PTX) for this GPU? A build for sm_90a alone cannot run on sm_86.
  cudaFuncAttributes attr{};
  if ((e = cudaFuncGetAttributes(&attr, probe_kernel)) != cudaSuccess) {
    cudaGetLastError();
    return unsupported(cat("GPU ", index, " (", d.name, ", compute capability ", d.cc_major, ".", d.cc_minor,
                           ") is not among the architectures this tailor was built for; rebuild with "
                           "-DTAILOR_CUDA_ARCHS=",
                           d.cc_major, d.cc_minor, " (or use the CPU backend)"));
  }
  if (d.cc_major * 10 + d.cc_minor < 75)
    return unsupported(cat("GPU ", index, " (", d.name, ") has compute capability ", d.cc_major, ".",
                           d.cc_minor,
                           "; tailor's CUDA backend needs 7.5 or newer (Turing); use the CPU backend"));
  if (weight_dtype == DType::bf16 && d.cc_major < 8)
    return unsupported(cat("GPU ", index, " (", d.name, ", sm_", d.cc_major, d.cc_minor,
                           ") has no bf16 tensor cores; use --dtype f16"));
  return d;
}

MemInfo memory_info() {
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) cudaGetLastError();
  return {f, t};
}

Result<double> measure_copy_bandwidth(uint64_t bytes, int reps) {
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
    cudaGetLastError();
    if (a) cudaFree(a);
    return out_of_memory(cat("copy-bandwidth probe: cannot allocate 2 x ", bytes >> 20, " MiB on the GPU"));
  }
  cudaMemset(a, 0x3c, bytes);  // nonzero bytes
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < reps + 2; ++i) {
    cudaEventRecord(e0);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (i >= 2) ms.push_back(t);  // two warm-ups
  }
  const cudaError_t err = cudaGetLastError();
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  if (err != cudaSuccess)
    return internal_error(cat("copy-bandwidth probe failed: ", cudaGetErrorString(err)));
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2] * 1e-3;
  return 2.0 * double(bytes) / med;
}

}  // namespace tailor::cuda
