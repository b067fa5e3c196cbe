// Private to src/plan: the memory model the planner searches over. Not part of the public API.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace tailor::plan_detail {

// Where the three parts of a model go. Layers 0..n_gpu-1 run on the GPU, the rest on the CPU. The embedding
// table is separate because its lookup reads one row per token (keeping it in host RAM costs nothing); with
// tied embeddings it is part of the output group.
struct Layout {
  int n_gpu = 0;
  bool embd_gpu = false;
  bool out_gpu = false;
  bool operator==(const Layout&) const = default;
};

// Weight bytes per part of the model, on each side.
struct Sizing {
  std::vector<uint64_t> layer_gpu, layer_cpu;  // [n_layer]
  std::vector<uint64_t> layer_stage;           // largest tensor of the layer converted for the GPU (staging)
  uint64_t embd_gpu = 0, embd_cpu = 0, embd_stage = 0;
  uint64_t out_gpu = 0, out_cpu = 0, out_stage = 0;
  DType kv_gpu = DType::f16, kv_cpu = DType::bf16;
};

// Everything but the weights that the budget depends on.
struct MemoryInputs {
  const HParams* hp = nullptr;
  int64_t batch = 1, prefill_chunk = 512;
  int cpu_cores = 1;
  bool have_gpu = false, unified = false;
  uint64_t gpu_free = 0, gpu_total = 0, host_available = 0;
};

MemoryBudget estimate_memory(const MemoryInputs& in, const Sizing& s, const Layout& l, int64_t ctx);
bool gpu_fits(const MemoryBudget& b);
bool host_fits(const MemoryBudget& b);
inline bool fits(const MemoryBudget& b) {
  return gpu_fits(b) && host_fits(b);
}

// KV cache bytes of one layer: ctx x batch x 2 (K and V) x n_head_kv x head_dim x dtype.
uint64_t kv_bytes_per_layer(const HParams& hp, int64_t ctx, int64_t batch, DType t);

// The automatic placement for `ctx`: everything on the GPU; else the embedding on the host; else the most
// layers whose GPU share fits. `forced_gpu_layers` pins the layer count instead.
Layout choose_layout(const MemoryInputs& in, const Sizing& s, int n_layer, bool tied, int64_t ctx,
                     std::optional<int> forced_gpu_layers);
// Largest ctx in [1, limit] that fits with `l`; 0 when even 1 does not.
int64_t largest_ctx(const MemoryInputs& in, const Sizing& s, const Layout& l, int64_t limit);

// What the refusal message needs to try alternatives: the same search with other sizings and options.
struct RefusalInputs {
  const Plan* plan = nullptr;
  const MemoryInputs* mem = nullptr;
  const Sizing* sizing = nullptr;  // as planned
  bool tied = false;
  std::function<Sizing(DType)> size_as;  // every matrix sized as a (block-quantized) dtype
  std::function<Sizing()> automatic;     // the dtypes the plan picks without --dtype
};
// "<model> does not fit: needs X of host RAM, Y available; q8_0 would need Z and fit (not yet supported);
// ...".
std::string refusal_message(const RefusalInputs& in, const Layout& layout, const MemoryBudget& b);

// Fills plan.ops (kernel per op class and side, per-tensor exceptions) and appends plan.warnings. Fails when
// an op has no kernel at all on its device.
Status add_ops_and_warnings(Plan& p);

}  // namespace tailor::plan_detail
