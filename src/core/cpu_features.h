// What the CPU *and the OS* enable (CPUID bits checked against XGETBV), for run-time kernel dispatch.
#pragma once

#include <string>

namespace tailor {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_bf16 = false, avx512_fp16 = false;
  bool avx_vnni = false, amx_bf16 = false, amx_tile = false;
  bool neon = false, sve = false;
  std::string list() const;  // "avx2 fma f16c avx512f ..."
};

// Detected once; TAILOR_CPU_MAX=scalar|avx2 caps what kernels use (for testing fallbacks).
const CpuFeatures& cpu_features();

}  // namespace tailor
