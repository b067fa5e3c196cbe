// make_plan: per-tensor dtype choice (with the f16 range check only where a conversion to f16 is wanted),
// placement search, largest context, the op table, warnings, and - when nothing fits - a refusal that says
// what would.
#include "plan/plan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "plan/convert.h"
#include "plan/plan_internal.h"

namespace tailor {

using plan_detail::Layout;
using plan_detail::MemoryInputs;
using plan_detail::Sizing;

const char* place_name(Place p) {
  return p == Place::gpu ? "gpu" : "cpu";
}

uint64_t MemoryBudget::weights_total() const {
  uint64_t t = 0;
  for (auto& [_, b] : weights_by_dtype) t += b;
  return t;
}

int layer_of_tensor(const std::string& name) {
  static const std::string kPrefix = "model.layers.";
  if (name.rfind(kPrefix, 0) != 0) return -1;
  size_t i = kPrefix.size();
  int v = 0, digits = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 7)
    v = v * 10 + (name[i++] - '0'), ++digits;
  if (digits == 0 || i >= name.size() || name[i] != '.') return -1;
  return v;
}

const TensorPlan* find_tensor_plan(const Plan& plan, const std::string& name) {
  for (const TensorPlan& t : plan.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Status plan_status(const Plan& plan) {
  if (plan.fits) return {};
  return out_of_memory(plan.refusal);
}

namespace {

bool is_float_storage(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

enum class Group : uint8_t { layer, embd, out };

// A storage choice for one tensor on one target.
struct Cand {
  DType want = DType::bf16;  // before the range check
  DType storage = DType::bf16;
  DType compute = DType::f32;
  bool kept_wider = false, range_unchecked = false;
  uint64_t bytes = 0;
  bool wants_f16_conversion(DType stored) const { return want == DType::f16 && stored != DType::f16; }
};

struct Entry {
  const TensorDesc* d = nullptr;
  int layer = -1;
  Group group = Group::out;
  bool tried = false;  // range looked up (data read or max_abs given)
  std::optional<float> max_abs;
  Cand cpu, gpu;
};

Cand choose(const Entry& e, const Target& t, const std::optional<DType>& override) {
  const TensorDesc& d = *e.d;
  const uint64_t n = uint64_t(d.shape.numel());
  Cand c;
  if (d.shape.rank <= 1) {
    // Norm weights and biases: tiny, and the norm/bias ops take f32.
    c.want = c.storage = c.compute = DType::f32;
    c.bytes = 4 * n;
    return c;
  }
  c.want = override ? *override : preferred_storage(t, d.dtype);
  c.storage = c.want;
  if (c.wants_f16_conversion(d.dtype)) {
    if (e.max_abs && *e.max_abs > kF16Max) {
      c.storage = wider_than_f16(t);
      c.kept_wider = true;
    } else if (!e.max_abs) {
      c.range_unchecked = true;
    }
  }
  c.compute = kernel_for(t, e.group == Group::embd ? OpClass::embedding : OpClass::matmul, c.storage).compute;
  c.bytes = dtype_row_bytes(c.storage, n);
  return c;
}

Place place_of(const Entry& e, const Layout& l) {
  switch (e.group) {
    case Group::layer:
      return e.layer < l.n_gpu ? Place::gpu : Place::cpu;
    case Group::embd:
      return l.embd_gpu ? Place::gpu : Place::cpu;
    case Group::out:
      return l.out_gpu ? Place::gpu : Place::cpu;
  }
  return Place::cpu;
}

// Bytes per part. `size_as` (a block-quantized dtype for "what would fit" estimates) sizes every matrix in
// it.
Sizing make_sizing(const std::vector<Entry>& es, int n_layer, DType kv_gpu, DType kv_cpu,
                   std::optional<DType> size_as = std::nullopt) {
  Sizing s;
  s.layer_gpu.assign(size_t(n_layer), 0);
  s.layer_cpu.assign(size_t(n_layer), 0);
  s.layer_stage.assign(size_t(n_layer), 0);
  s.kv_gpu = kv_gpu;
  s.kv_cpu = kv_cpu;
  for (const Entry& e : es) {
    uint64_t g = e.gpu.bytes, c = e.cpu.bytes;
    uint64_t stage = e.gpu.storage != e.d->dtype ? g : 0;
    if (size_as && e.d->shape.rank >= 2) {
      const auto& info = dtype_info(*size_as);
      const uint64_t blocks = (uint64_t(e.d->shape.numel()) + info.block_elems - 1) / info.block_elems;
      g = c = blocks * info.block_bytes;
      stage = 0;
    }
    switch (e.group) {
      case Group::layer:
        s.layer_gpu[size_t(e.layer)] += g;
        s.layer_cpu[size_t(e.layer)] += c;
        s.layer_stage[size_t(e.layer)] = std::max(s.layer_stage[size_t(e.layer)], stage);
        break;
      case Group::embd:
        s.embd_gpu += g;
        s.embd_cpu += c;
        s.embd_stage = std::max(s.embd_stage, stage);
        break;
      case Group::out:
        s.out_gpu += g;
        s.out_cpu += c;
        s.out_stage = std::max(s.out_stage, stage);
        break;
    }
  }
  return s;
}

Status validate_hparams(HParams& hp) {
  if (hp.head_dim == 0 && hp.n_head > 0) hp.head_dim = hp.n_embd / hp.n_head;
  struct {
    const char* name;
    int v;
  } fields[] = {{"num_hidden_layers", hp.n_layer},  {"hidden_size", hp.n_embd},
                {"num_attention_heads", hp.n_head}, {"num_key_value_heads", hp.n_head_kv},
                {"head_dim", hp.head_dim},          {"intermediate_size", hp.n_ff},
                {"vocab_size", hp.n_vocab},         {"max_position_embeddings", hp.max_position_embeddings}};
  for (auto& f : fields)
    if (f.v <= 0) return invalid_argument(cat("model hparams: ", f.name, " must be > 0 (got ", f.v, ")"));
  return {};
}

int64_t context_limit(const HParams& hp) {
  double f = hp.rope_scaling.type == RopeScaling::Type::linear ? std::max(1.0f, hp.rope_scaling.factor) : 1.0;
  return int64_t(double(hp.max_position_embeddings) * f);
}

}  // namespace

Result<Plan> make_plan(const HParams& hp_in, const std::vector<TensorDesc>& tensors, const DeviceInfo& device,
                       const PlanOptions& opt) {
  HParams hp = hp_in;
  TAILOR_RETURN_IF_ERROR(validate_hparams(hp));
  if (tensors.empty()) return invalid_argument("make_plan: the model has no tensors to plan");
  const int64_t limit = context_limit(hp);
  if (opt.ctx && *opt.ctx < 1) return invalid_argument(cat("--ctx must be at least 1 (got ", *opt.ctx, ")"));
  if (opt.ctx && *opt.ctx > limit)
    return invalid_argument(
        cat("--ctx ", *opt.ctx, " exceeds what the model supports (max_position_embeddings ",
            hp.max_position_embeddings,
            hp.rope_scaling.type == RopeScaling::Type::linear ? " x linear rope scaling" : "", " = ", limit,
            "); use --ctx ", limit, " or less"));
  if (opt.batch < 1 || opt.batch > 4096)
    return invalid_argument(cat("--batch must be between 1 and 4096 (got ", opt.batch, ")"));
  if (opt.prefill_chunk < 1)
    return invalid_argument(cat("prefill chunk must be at least 1 (got ", opt.prefill_chunk, ")"));
  if (opt.gpu_layers && *opt.gpu_layers < 0)
    return invalid_argument(cat("--gpu-layers must be 0 or more (got ", *opt.gpu_layers, ")"));
  if (opt.dtype && !is_float_storage(*opt.dtype))
    return unsupported(
        cat("--dtype ", dtype_name(*opt.dtype), " is not a storage dtype yet (use bf16, f16 or f32)"));

  Plan p;
  p.model_name = opt.model_name.empty() ? "model" : opt.model_name;
  p.hp = hp;
  p.device = device;
  p.options = opt;
  p.ctx_limit = limit;
  p.ctx = opt.ctx ? *opt.ctx : std::min<int64_t>(limit, 4096);
  p.batch = opt.batch;
  p.prefill_chunk = opt.prefill_chunk;
  p.n_layer = hp.n_layer;
  p.cpu = cpu_target(device);

  // ---- the GPU, if there is a usable one ----
  if (!device.gpus.empty()) {
    if (opt.gpu_index < 0 || opt.gpu_index >= int(device.gpus.size()))
      return invalid_argument(cat("--gpu ", opt.gpu_index, ": ", device.name, " has ", device.gpus.size(),
                                  " GPU(s), numbered from 0"));
    const GpuInfo& g = device.gpus[size_t(opt.gpu_index)];
    p.gpu = gpu_target(g);
    if (g.backend == Backend::cuda && g.cc() < kMinCudaCC) {
      p.warnings.push_back(
          cat(g.name, " is ", g.arch(), "; the CUDA backend needs sm_70 or newer: running on the CPU"));
    } else {
      p.use_gpu = true;
    }
    if (device.gpus.size() > 1)
      p.warnings.push_back(
          cat("using ", p.gpu.label(), " only: splitting a model over several GPUs is not planned yet"));
  }
  if (device.gpus.empty() && opt.gpu_index != 0)
    return invalid_argument(
        cat("--gpu ", opt.gpu_index, ": ", device.name, " has no GPU (", device.no_gpu_reason, ")"));
  if (!p.use_gpu && opt.gpu_layers && *opt.gpu_layers > 0)
    return invalid_argument(cat("--gpu-layers ", *opt.gpu_layers, " needs a GPU, but ", device.name,
                                " has none usable (",
                                device.gpus.empty() ? device.no_gpu_reason : "see the warning above", ")"));

  // ---- tensors: groups and the model's dtype ----
  bool has_lm_head = false;
  for (const TensorDesc& d : tensors) has_lm_head |= d.name == "lm_head.weight";
  const bool tied = hp.tie_word_embeddings || !has_lm_head;
  std::vector<Entry> es;
  std::map<DType, uint64_t> stored_bytes;
  for (const TensorDesc& d : tensors) {
    if (!is_float_storage(d.dtype))
      return unsupported(cat("tensor \"", d.name, "\" is stored as ", dtype_name(d.dtype),
                             "; tailor plans f32/f16/bf16 weights only"));
    Entry e;
    e.d = &d;
    e.layer = layer_of_tensor(d.name);
    if (e.layer >= hp.n_layer)
      return invalid_argument(cat("tensor \"", d.name, "\" names layer ", e.layer, " but the model has ",
                                  hp.n_layer, " layers (num_hidden_layers)"));
    e.group = e.layer >= 0                                       ? Group::layer
              : (d.name == "model.embed_tokens.weight" && !tied) ? Group::embd
                                                                 : Group::out;
    if (d.max_abs) {
      e.tried = true;
      e.max_abs = *d.max_abs;
    }
    stored_bytes[d.dtype] += dtype_row_bytes(d.dtype, uint64_t(d.shape.numel()));
    es.push_back(e);
  }
  const DType model_dtype = std::max_element(stored_bytes.begin(), stored_bytes.end(), [](auto& a, auto& b) {
                              return a.second < b.second;
                            })->first;
  const DType want_cpu = opt.dtype ? *opt.dtype : preferred_storage(p.cpu, model_dtype);
  p.kv_dtype_cpu = kv_dtype_for(p.cpu, want_cpu);
  p.kv_dtype_gpu = p.use_gpu
                       ? kv_dtype_for(p.gpu, opt.dtype ? *opt.dtype : preferred_storage(p.gpu, model_dtype))
                       : p.kv_dtype_cpu;

  MemoryInputs mi;
  mi.hp = &p.hp;
  mi.batch = p.batch;
  mi.prefill_chunk = p.prefill_chunk;
  mi.cpu_cores = std::max(1, device.cpu.cores);
  mi.have_gpu = p.use_gpu;
  mi.unified = p.use_gpu && p.gpu.gpu.unified_memory;
  mi.gpu_free = p.use_gpu ? p.gpu.gpu.mem_free : 0;
  mi.gpu_total = p.use_gpu ? p.gpu.gpu.mem_total : 0;
  mi.host_available = device.cpu.mem_available;

  auto recompute = [&](Entry& e) {
    e.cpu = choose(e, p.cpu, opt.dtype);
    e.gpu = p.use_gpu ? choose(e, p.gpu, opt.dtype) : e.cpu;
  };
  for (Entry& e : es) recompute(e);

  // Placement and range checks feed each other: place assuming f16 fits, check the range of the tensors that
  // would be converted where they are placed, re-place (kept-wider tensors are bigger), until nothing
  // changes.
  Layout layout;
  Sizing sizing;
  for (;;) {
    sizing = make_sizing(es, hp.n_layer, p.kv_dtype_gpu, p.kv_dtype_cpu);
    layout = plan_detail::choose_layout(mi, sizing, hp.n_layer, tied, p.ctx, opt.gpu_layers);
    bool changed = false;
    for (Entry& e : es) {
      const Cand& c = place_of(e, layout) == Place::gpu ? e.gpu : e.cpu;
      if (!c.wants_f16_conversion(e.d->dtype) || e.tried) continue;
      e.tried = true;
      if (e.d->data) {
        TAILOR_ASSIGN_OR_RETURN(RangeStats rs,
                                range_stats(e.d->data, e.d->dtype, uint64_t(e.d->shape.numel())));
        if (rs.n_nonfinite > 0)
          return Status(ErrorCode::corrupt, cat("tensor \"", e.d->name, "\": ", rs.n_nonfinite,
                                                " stored values are NaN or Inf (corrupt checkpoint?)"));
        e.max_abs = rs.max_abs;
        recompute(e);
        changed = true;
      }
    }
    if (!changed) break;
  }

  // ---- the chosen plan ----
  p.n_gpu_layers = layout.n_gpu;
  p.embd_on_gpu = layout.embd_gpu || (tied && layout.out_gpu);
  p.output_on_gpu = layout.out_gpu;
  p.mem = plan_detail::estimate_memory(mi, sizing, layout, p.ctx);
  p.fits = plan_detail::fits(p.mem);
  p.max_ctx = plan_detail::largest_ctx(mi, sizing, layout, limit);
  std::map<DType, uint64_t> by_dtype;
  for (const Entry& e : es) {
    const Place place = place_of(e, layout);
    const Cand& c = place == Place::gpu ? e.gpu : e.cpu;
    TensorPlan t;
    t.name = e.d->name;
    t.shape = e.d->shape;
    t.layer = e.layer;
    t.stored = e.d->dtype;
    t.storage = c.storage;
    t.compute = c.compute;
    t.place = place;
    t.max_abs = e.max_abs;
    t.kept_wider = c.kept_wider;
    t.range_unchecked = c.range_unchecked;
    t.bytes = c.bytes;
    by_dtype[t.storage] += t.bytes;
    p.tensors.push_back(std::move(t));
  }
  p.mem.weights_by_dtype.assign(by_dtype.begin(), by_dtype.end());
  TAILOR_RETURN_IF_ERROR(plan_detail::add_ops_and_warnings(p));

  if (!p.fits) {
    plan_detail::RefusalInputs ri;
    ri.plan = &p;
    ri.mem = &mi;
    ri.sizing = &sizing;
    ri.tied = tied;
    ri.size_as = [&](DType q) { return make_sizing(es, hp.n_layer, p.kv_dtype_gpu, p.kv_dtype_cpu, q); };
    ri.automatic = [&]() {
      std::vector<Entry> alt = es;
      for (Entry& e : alt) {
        e.cpu = choose(e, p.cpu, std::nullopt);
        e.gpu = p.use_gpu ? choose(e, p.gpu, std::nullopt) : e.cpu;
      }
      return make_sizing(alt, hp.n_layer, p.kv_dtype_gpu, p.kv_dtype_cpu);
    };
    p.refusal = plan_detail::refusal_message(ri, layout, p.mem);
  }
  return p;
}

}  // namespace tailor
