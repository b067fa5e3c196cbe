// The memory model. Weights come from the Sizing (bytes in their planned storage dtype); the KV cache is
// exact; activations and workspace are an estimate, sized for the largest forward pass (a prefill chunk):
//   per token (f32): residual, norm out, attention out, FFN out (4 x n_embd) + q, k, v, attention result
//   (2 x q_dim + 2 x kv_dim) + gate, up, silu*up (3 x n_ff); buffers are reused layer to layer.
//   logits: batch x n_vocab f32 (last position of each sequence only).
//   attention scratch: GPU split-K partials (batch x n_head x 32 splits x (head_dim + 2) f32);
//   CPU one score row of ctx f32 per thread.
//   GPU workspace: 32 MiB cuBLASLt + reserve 256 MiB + 1% of the GPU (allocator slack, handles, graphs).
//   host: pinned staging (64 MiB, or the largest tensor converted before upload) + margin 512 MiB + 1% of
//   the host-side weights (runtime, tokenizer, page tables).
#include <algorithm>

#include "plan/plan_internal.h"

namespace tailor::plan_detail {

namespace {
constexpr uint64_t kMiB = 1024ull * 1024ull;
constexpr int kSplits = 32;
}  // namespace

uint64_t kv_bytes_per_layer(const HParams& hp, int64_t ctx, int64_t batch, DType t) {
  return uint64_t(ctx) * uint64_t(batch) * 2ull * uint64_t(hp.n_head_kv) * uint64_t(hp.head_dim) *
         dtype_size(t);
}

MemoryBudget estimate_memory(const MemoryInputs& in, const Sizing& s, const Layout& l, int64_t ctx) {
  const HParams& hp = *in.hp;
  const int L = int(s.layer_gpu.size());
  MemoryBudget b;
  b.unified = in.unified;
  b.gpu_free = in.gpu_free;
  b.host_available = in.host_available;

  uint64_t stage = 0;
  for (int i = 0; i < L; ++i) {
    if (i < l.n_gpu) {
      b.gpu_weights += s.layer_gpu[size_t(i)];
      stage = std::max(stage, s.layer_stage[size_t(i)]);
    } else {
      b.host_weights += s.layer_cpu[size_t(i)];
    }
  }
  if (l.embd_gpu) {
    b.gpu_weights += s.embd_gpu;
    stage = std::max(stage, s.embd_stage);
  } else {
    b.host_weights += s.embd_cpu;
  }
  if (l.out_gpu) {
    b.gpu_weights += s.out_gpu;
    stage = std::max(stage, s.out_stage);
  } else {
    b.host_weights += s.out_cpu;
  }
  b.gpu_kv = uint64_t(l.n_gpu) * kv_bytes_per_layer(hp, ctx, in.batch, s.kv_gpu);
  b.host_kv = uint64_t(L - l.n_gpu) * kv_bytes_per_layer(hp, ctx, in.batch, s.kv_cpu);

  const int64_t tokens = std::max<int64_t>(in.batch, std::min<int64_t>(in.prefill_chunk, ctx * in.batch));
  const uint64_t per_token =
      4ull * (4ull * hp.n_embd + 2ull * hp.q_dim() + 2ull * hp.kv_dim() + 3ull * hp.n_ff);
  const uint64_t layer_act = uint64_t(tokens) * per_token;
  const uint64_t logits = 4ull * uint64_t(hp.n_vocab) * uint64_t(in.batch);

  const bool gpu_used = l.n_gpu > 0 || l.embd_gpu || l.out_gpu;
  const bool cpu_layers = l.n_gpu < L;
  if (gpu_used) {
    b.gpu_act = layer_act + (l.out_gpu ? logits : 0) + 32 * kMiB +
                4ull * uint64_t(in.batch) * hp.n_head * kSplits * (uint64_t(hp.head_dim) + 2);
    b.gpu_reserve = 256 * kMiB + in.gpu_total / 100;
    // Unified memory converts straight into the GPU's buffer; a discrete GPU uploads through pinned staging.
    b.host_staging = in.unified ? 0 : std::max<uint64_t>(64 * kMiB, stage);
  }
  // The host always holds the logits it samples from; it runs whole layers only when some are on the CPU.
  b.host_act =
      logits + (cpu_layers || !l.out_gpu ? layer_act + uint64_t(in.cpu_cores) * uint64_t(ctx) * 4 : 0);
  b.host_margin = 512 * kMiB + b.host_weights / 100;
  b.gpu_need = gpu_used ? b.gpu_weights + b.gpu_kv + b.gpu_act + b.gpu_reserve : 0;
  b.host_need = b.host_weights + b.host_kv + b.host_act + b.host_staging + b.host_margin;
  if (in.unified) b.host_need += b.gpu_need;  // one pool: what the GPU holds is host RAM too
  return b;
}

bool gpu_fits(const MemoryBudget& b) {
  return b.gpu_need <= b.gpu_free;
}
bool host_fits(const MemoryBudget& b) {
  return b.host_need <= b.host_available;
}

Layout choose_layout(const MemoryInputs& in, const Sizing& s, int n_layer, bool tied, int64_t ctx,
                     std::optional<int> forced_gpu_layers) {
  if (!in.have_gpu) return {};
  if (forced_gpu_layers) {
    const int n = std::clamp(*forced_gpu_layers, 0, n_layer);
    const bool all = n == n_layer;
    // With every layer pinned to the GPU the output follows; the embedding goes where it fits.
    Layout full{n, all, all};
    if (all && !tied && !gpu_fits(estimate_memory(in, s, full, ctx))) full.embd_gpu = false;
    return full;
  }
  const Layout everything{n_layer, true, true};
  if (gpu_fits(estimate_memory(in, s, everything, ctx))) return everything;
  if (!tied) {
    const Layout host_embd{n_layer, false, true};
    if (gpu_fits(estimate_memory(in, s, host_embd, ctx))) return host_embd;
  }
  for (int n = n_layer; n > 0; --n) {
    const Layout partial{n, false, false};
    if (gpu_fits(estimate_memory(in, s, partial, ctx))) return partial;
  }
  return {};
}

int64_t largest_ctx(const MemoryInputs& in, const Sizing& s, const Layout& l, int64_t limit) {
  if (limit < 1 || !fits(estimate_memory(in, s, l, 1))) return 0;
  int64_t lo = 1, hi = limit;  // fits(lo) holds
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(estimate_memory(in, s, l, mid))) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace tailor::plan_detail
