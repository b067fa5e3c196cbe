#include "sampling_flags.h"

#include "core/thread_pool.h"

namespace tailor::cli {

Result<SamplerParams> sampling_from_args(const Args& a) {
  SamplerParams p;
  TAILOR_ASSIGN_OR_RETURN(double t, a.get_double("temperature", p.temperature));
  TAILOR_ASSIGN_OR_RETURN(long long k, a.get_int("top-k", p.top_k));
  TAILOR_ASSIGN_OR_RETURN(double tp, a.get_double("top-p", p.top_p));
  TAILOR_ASSIGN_OR_RETURN(double mp, a.get_double("min-p", p.min_p));
  TAILOR_ASSIGN_OR_RETURN(long long seed, a.get_int("seed", (long long)p.seed));
  TAILOR_ASSIGN_OR_RETURN(double rp, a.get_double("repeat-penalty", p.repetition_penalty));
  TAILOR_ASSIGN_OR_RETURN(double pp, a.get_double("presence-penalty", p.presence_penalty));
  TAILOR_ASSIGN_OR_RETURN(double fp, a.get_double("frequency-penalty", p.frequency_penalty));
  TAILOR_ASSIGN_OR_RETURN(long long ln, a.get_int("repeat-last-n", p.penalty_last_n));
  p.temperature = float(t), p.top_k = int(k), p.top_p = float(tp), p.min_p = float(mp),
  p.seed = uint64_t(seed);
  p.repetition_penalty = float(rp), p.presence_penalty = float(pp), p.frequency_penalty = float(fp);
  p.penalty_last_n = int(ln);
  TAILOR_RETURN_IF_ERROR(validate(p));
  return p;
}

Result<LoadOptions> load_options_from_args(const Args& a) {
  LoadOptions o;
  TAILOR_ASSIGN_OR_RETURN(long long ctx, a.get_int("ctx", 4096));
  if (ctx <= 0 || ctx > (1 << 24))
    return invalid_argument(cat("--ctx must be between 1 and 16777216, got ", ctx));
  o.runner.n_ctx = int(ctx);
  TAILOR_ASSIGN_OR_RETURN(long long th, a.get_int("threads", 0));
  if (th < 0 || th > 1024) return invalid_argument("--threads must be between 0 (all cores) and 1024");
  if (th > 0) ThreadPool::set_global_threads(int(th));
  if (auto d = a.get("dtype")) {  // otherwise the Plan picks the fastest dtype the hardware really supports
    auto t = dtype_from_name(*d);
    if (!t || (*t != DType::f32 && *t != DType::f16 && *t != DType::bf16))
      return invalid_argument(cat("unknown --dtype '", *d, "' (valid: bf16, f16, f32)"));
    o.dtype = *t;
  }
  if (auto d = a.get("kv-dtype")) {
    auto t = dtype_from_name(*d);
    if (!t || (*t != DType::f32 && *t != DType::f16 && *t != DType::bf16))
      return invalid_argument(cat("unknown --kv-dtype '", *d, "' (valid: f32, f16, bf16)"));
    o.kv_dtype = *t;
  }
  o.device = a.get_or("device", "auto");
  if (a.has("gpu-layers")) {
    TAILOR_ASSIGN_OR_RETURN(long long n, a.get_int("gpu-layers", 0));
    if (n < 0 || n > 1000000) return invalid_argument(cat("--gpu-layers must be 0 or more (got ", n, ")"));
    o.gpu_layers = int(n);
  }
  return o;
}

}  // namespace tailor::cli
