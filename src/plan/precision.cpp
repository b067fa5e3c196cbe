// The kernel table per backend. Facts it encodes (keep in step with src/backend):
// - CPU: matmul reads f32/f16/bf16 weights and accumulates in f32 (AVX-512, AVX2+FMA, NEON; f16 needs F16C
//   on x86); with AVX512_BF16 the bf16 dot product is native. Norm weights are f32. Without SIMD: scalar,
//   slow.
// - CUDA: f16 tensor cores from sm_70, bf16 from sm_80 (before that bf16 is emulated in f32), f32 accumulate.
// - Metal (simulated; no backend yet): f16 simdgroup matrices; no bf16 kernels on M1-M3.
#include "plan/precision.h"

namespace tailor {

const char* op_class_name(OpClass op) {
  switch (op) {
    case OpClass::matmul:
      return "matmul";
    case OpClass::attention:
      return "attention";
    case OpClass::norm:
      return "norm";
    case OpClass::kv_cache:
      return "kv_cache";
    case OpClass::embedding:
      return "embedding";
  }
  return "?";
}

std::string Target::label() const {
  switch (backend) {
    case Backend::cpu:
      return "cpu";
    case Backend::cuda:
      return cat("cuda:", gpu.index, " (", gpu.arch(), ")");
    case Backend::metal:
      return cat("metal:", gpu.index);
  }
  return "?";
}

Target cpu_target(const DeviceInfo& d) {
  Target t;
  t.backend = Backend::cpu;
  t.cpu = d.cpu.features;
  return t;
}

Target gpu_target(const GpuInfo& g) {
  Target t;
  t.backend = g.backend;
  t.gpu = g;
  return t;
}

namespace {

bool is_half_or_f32(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

KernelChoice missing(DType t, const std::string& where) {
  KernelChoice k;
  k.note = cat("no ", where, " kernel for ", dtype_name(t), " yet");
  return k;
}

KernelChoice make(std::string kernel, DType compute, bool slow = false, std::string note = {}) {
  KernelChoice k;
  k.exists = true;
  k.kernel = std::move(kernel);
  k.compute = compute;
  k.slow = slow;
  k.note = std::move(note);
  return k;
}

KernelChoice cpu_kernel(const CpuFeatures& f, OpClass op, DType t) {
  const bool avx512 = f.avx512f && f.fma;
  const bool avx2 = f.avx2 && f.fma;
  const char* isa = avx512 ? "avx512" : avx2 ? "avx2-fma" : f.neon ? "neon" : "scalar";
  const bool simd = avx512 || avx2 || f.neon;
  const bool f16_fast = f.neon || (simd && f.f16c);
  if (!is_half_or_f32(t)) return missing(t, "CPU");
  const std::string scalar_note = "no AVX2/NEON: scalar code, many times slower";
  switch (op) {
    case OpClass::norm:
      if (t != DType::f32) return missing(t, "CPU rms_norm (norm weights are widened to f32 at load)");
      return make(cat("cpu rms_norm ", isa, " (f32 statistics)"), DType::f32, !simd, simd ? "" : scalar_note);
    case OpClass::embedding:
      // A row gather per token: no bandwidth to speak of, any dtype is fine.
      return make(cat("cpu embedding gather, ", dtype_name(t), " rows widened to f32"), DType::f32);
    case OpClass::matmul:
      if (t == DType::bf16 && f.avx512_bf16)
        return make("cpu matmul avx512-bf16 dot (vdpbf16ps), f32 accumulate", DType::bf16);
      break;
    case OpClass::attention:
    case OpClass::kv_cache:
      break;
  }
  if (op == OpClass::kv_cache) {
    // Rows are written once per token: any dtype is fine; f16 without F16C converts in software (still
    // small).
    return make(cat("cpu kv_store, f32 rows rounded to ", dtype_name(t)), DType::f32);
  }
  const std::string what = op == OpClass::matmul ? "matmul" : "attention (f32 softmax)";
  if (!simd) return make(cat("cpu ", what, " scalar, ", dtype_name(t)), DType::f32, true, scalar_note);
  if (t == DType::f16 && !f16_fast)
    return make(cat("cpu ", what, " ", isa, ", f16 widened in software"), DType::f32, true,
                "no F16C: every f16 value is converted in software");
  if (t == DType::f32) return make(cat("cpu ", what, " ", isa, ", f32"), DType::f32);
  return make(
      cat("cpu ", what, " ", isa, ", ", dtype_name(t), " widened to f32 in registers, f32 accumulate"),
      DType::f32);
}

KernelChoice cuda_kernel(const GpuInfo& g, OpClass op, DType t) {
  if (g.cc() < kMinCudaCC) {
    KernelChoice k;
    k.note = cat(g.name, " is ", g.arch(), "; the CUDA backend needs sm_70 or newer (f16 tensor cores)");
    return k;
  }
  if (!is_half_or_f32(t)) return missing(t, "CUDA");
  const bool bf16_native = g.bf16 && g.cc() >= 80;
  const std::string emulated = cat("bf16 has no tensor cores on ", g.arch(),
                                   " (needs sm_80): emulated in f32, several times slower than f16");
  switch (op) {
    case OpClass::norm:
      if (t != DType::f32) return missing(t, "CUDA rms_norm (norm weights are widened to f32 at load)");
      return make("cuda rms_norm fused with residual add (f32 statistics)", DType::f32);
    case OpClass::embedding:
      return make(cat("cuda embedding gather, ", dtype_name(t)), t == DType::f32 ? DType::f32 : t);
    case OpClass::matmul:
      if (t == DType::f32)
        return make("cuda gemv + cublas sgemm f32 (no tensor cores, 2x the bytes of f16)", DType::f32);
      if (t == DType::bf16 && !bf16_native)
        return make("cuda gemv bf16 widened to f32 (no tensor cores)", DType::f32, true, emulated);
      return make(
          cat("cuda gemv (decode) + cublasLt ", dtype_name(t), " tensor cores (prefill), f32 accumulate"), t);
    case OpClass::attention:
      if (t == DType::f32)
        return make("cuda attention, f32 KV cache (no tensor cores)", DType::f32, true,
                    "an f32 KV cache doubles its bytes and leaves the tensor cores idle");
      if (t == DType::bf16 && !bf16_native)
        return make("cuda attention, bf16 KV cache emulated in f32", DType::f32, true, emulated);
      return make(cat("cuda flash attention (prefill) + split-K decode, ", dtype_name(t),
                      " tensor cores, f32 softmax"),
                  t);
    case OpClass::kv_cache:
      if (t == DType::bf16 && !bf16_native) return make("cuda kv write, bf16 (converted in f32)", DType::f32);
      return make(cat("cuda kv write fused with RoPE, ", dtype_name(t)), t);
  }
  return missing(t, "CUDA");
}

KernelChoice metal_kernel(const GpuInfo& g, OpClass op, DType t) {
  if (!is_half_or_f32(t)) return missing(t, "Metal");
  const std::string emulated =
      cat(g.name, ": no bf16 Metal kernels (M1-M3): converted per use, several times slower");
  switch (op) {
    case OpClass::norm:
      if (t != DType::f32) return missing(t, "Metal rms_norm (norm weights are widened to f32 at load)");
      return make("metal rms_norm (f32 statistics)", DType::f32);
    case OpClass::embedding:
      return make(cat("metal embedding gather, ", dtype_name(t)), t);
    case OpClass::matmul:
    case OpClass::attention:
    case OpClass::kv_cache: {
      const char* what = op == OpClass::matmul      ? "metal simdgroup matmul"
                         : op == OpClass::attention ? "metal flash attention"
                                                    : "metal kv write";
      if (t == DType::bf16 && !g.bf16) return make(cat(what, ", bf16 emulated"), DType::f32, true, emulated);
      return make(cat(what, ", ", dtype_name(t), ", f32 accumulate"), t);
    }
  }
  return missing(t, "Metal");
}

bool fast(const Target& target, OpClass op, DType t) {
  KernelChoice k = kernel_for(target, op, t);
  return k.exists && !k.slow;
}

}  // namespace

KernelChoice kernel_for(const Target& target, OpClass op, DType t) {
  switch (target.backend) {
    case Backend::cpu:
      return cpu_kernel(target.cpu, op, t);
    case Backend::cuda:
      return cuda_kernel(target.gpu, op, t);
    case Backend::metal:
      return metal_kernel(target.gpu, op, t);
  }
  return {};
}

DType preferred_storage(const Target& target, DType stored) {
  switch (stored) {
    case DType::bf16:
      if (fast(target, OpClass::matmul, DType::bf16)) return DType::bf16;
      if (fast(target, OpClass::matmul, DType::f16)) return DType::f16;  // after the range check
      return DType::bf16;
    case DType::f16:
      return DType::f16;  // f16 -> bf16 would drop 3 mantissa bits; f16 is fast wherever SIMD is
    case DType::f32:
      // f16 keeps 3 more mantissa bits than bf16; the range check guards its smaller exponent.
      if (fast(target, OpClass::matmul, DType::f16)) return DType::f16;
      if (fast(target, OpClass::matmul, DType::bf16)) return DType::bf16;
      return DType::f32;
    default:
      return stored;
  }
}

DType wider_than_f16(const Target& target) {
  return fast(target, OpClass::matmul, DType::bf16) ? DType::bf16 : DType::f32;
}

DType kv_dtype_for(const Target& target, DType weights) {
  if ((weights == DType::bf16 || weights == DType::f16) && fast(target, OpClass::attention, weights))
    return weights;
  if (fast(target, OpClass::attention, DType::f16)) return DType::f16;
  if (fast(target, OpClass::attention, DType::bf16)) return DType::bf16;
  return DType::f32;
}

Result<DType> parse_storage_dtype(const std::string& name) {
  const char* valid = "bf16, f16, f32";
  auto t = dtype_from_name(name);
  if (!t) return invalid_argument(cat("unknown dtype \"", name, "\" (storage dtypes: ", valid, ")"));
  if (is_half_or_f32(*t)) return *t;
  if (*t == DType::q8_0 || *t == DType::q4_0 || *t == DType::q4_k || *t == DType::q6_k)
    return unsupported(
        cat("dtype ", dtype_name(*t), " is not supported as a storage dtype yet (use ", valid, ")"));
  return invalid_argument(
      cat("dtype ", dtype_name(*t), " cannot hold weights (storage dtypes: ", valid, ")"));
}

}  // namespace tailor
