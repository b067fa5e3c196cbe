// When a model does not fit: say what it needs, what is available, and what would fit - a smaller dtype, a
// shorter context, fewer GPU layers, a smaller batch - each tried with the same search the plan uses.
#include <algorithm>

#include "plan/plan_internal.h"

namespace tailor::plan_detail {

namespace {

struct Trial {
  bool fits = false;
  MemoryBudget b;
};

Trial trial(const MemoryInputs& mi, const Sizing& s, int n_layer, bool tied, int64_t ctx,
            std::optional<int> forced) {
  const Layout l = choose_layout(mi, s, n_layer, tied, ctx, forced);
  Trial t;
  t.b = estimate_memory(mi, s, l, ctx);
  t.fits = fits(t.b);
  return t;
}

}  // namespace

std::string refusal_message(const RefusalInputs& in, const Layout& layout, const MemoryBudget& b) {
  const Plan& p = *in.plan;
  const MemoryInputs& mi = *in.mem;
  const bool gpu_bound = !gpu_fits(b);
  // Every alternative is reported in the quantity that failed: GPU memory or host RAM.
  auto need = [&](const MemoryBudget& x) { return gpu_bound ? x.gpu_need : x.host_need; };

  std::string msg;
  if (gpu_bound) {
    msg = cat(p.model_name, " does not fit: ", layout.n_gpu, " layer(s) on ", p.gpu.label(), " need ",
              format_bytes(b.gpu_need), ", ", format_bytes(b.gpu_free), " free (weights ",
              format_bytes(b.gpu_weights), ", KV cache ", format_bytes(b.gpu_kv),
              ", activations and reserve ", format_bytes(b.gpu_act + b.gpu_reserve), ")");
  } else {
    msg = cat(p.model_name, " does not fit without swapping: needs ", format_bytes(b.host_need), " of RAM",
              b.unified ? " (shared by CPU and GPU)" : "", ", ", format_bytes(b.host_available),
              " available on ", p.device.name, " (weights ",
              format_bytes(b.host_weights + (b.unified ? b.gpu_weights : 0)), ", KV cache ",
              format_bytes(b.host_kv + (b.unified ? b.gpu_kv : 0)), ")");
    if (p.use_gpu && !b.unified)
      msg += cat(" with ", layout.n_gpu, " of ", p.n_layer, " layers on ", p.gpu.label());
  }

  std::vector<std::string> ideas;
  auto verdict = [&](const Trial& t) {
    return t.fits ? std::string(" and fit") : std::string(" (still too much)");
  };

  // A smaller dtype: the plan's own choice when --dtype forced a wider one, then the quantized types.
  if (p.options.dtype) {
    const Trial t = trial(mi, in.automatic(), p.n_layer, in.tied, p.ctx, p.options.gpu_layers);
    if (need(t.b) < need(b))
      ideas.push_back(cat("without --dtype it would need ", format_bytes(need(t.b)), verdict(t)));
  }
  for (DType q : {DType::q8_0, DType::q4_k}) {
    const Trial t = trial(mi, in.size_as(q), p.n_layer, in.tied, p.ctx, p.options.gpu_layers);
    ideas.push_back(
        cat(dtype_name(q), " would need ", format_bytes(need(t.b)), verdict(t), " (not yet supported)"));
  }

  // A shorter context: the longest that fits, or how little the shortest useful one saves.
  if (p.ctx > 1) {
    auto fits_at = [&](int64_t c) {
      return trial(mi, *in.sizing, p.n_layer, in.tied, c, p.options.gpu_layers).fits;
    };
    int64_t lo = 0, hi = p.ctx - 1;  // largest fitting ctx in [1, ctx-1], 0 if none
    if (fits_at(1)) {
      lo = 1;
      while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (fits_at(mid)) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
    }
    if (lo > 0) {
      const Trial t = trial(mi, *in.sizing, p.n_layer, in.tied, lo, p.options.gpu_layers);
      ideas.push_back(
          cat("--ctx ", lo, " fits (saves ", format_bytes(need(b) - std::min(need(b), need(t.b))), ")"));
    } else {
      const int64_t small = std::min<int64_t>(512, std::max<int64_t>(1, p.ctx / 2));
      const Trial t = trial(mi, *in.sizing, p.n_layer, in.tied, small, p.options.gpu_layers);
      ideas.push_back(cat("--ctx ", small, " saves only ",
                          format_bytes(need(b) - std::min(need(b), need(t.b))), " (not enough)"));
    }
  }

  // Fewer GPU layers, when the user pinned too many.
  if (gpu_bound && p.options.gpu_layers) {
    int k = std::min(*p.options.gpu_layers, p.n_layer) - 1;
    for (; k >= 0; --k)
      if (trial(mi, *in.sizing, p.n_layer, in.tied, p.ctx, k).fits) break;
    if (k >= 0) {
      ideas.push_back(cat("--gpu-layers ", k, " fits"));
    } else {
      ideas.push_back("no --gpu-layers value fits");
    }
  }

  // One sequence instead of several.
  if (p.batch > 1) {
    MemoryInputs one = mi;
    one.batch = 1;
    const Trial t = trial(one, *in.sizing, p.n_layer, in.tied, p.ctx, p.options.gpu_layers);
    ideas.push_back(cat("--batch 1 would need ", format_bytes(need(t.b)), verdict(t)));
  }

  for (const std::string& i : ideas) msg += "; " + i;
  return msg;
}

}  // namespace tailor::plan_detail
