// The op table of a plan (which kernel and dtype runs each op class, per side of the split, with per-tensor
// exceptions) and the warnings: every slow path, every tensor kept wider, every costly override.
#include <algorithm>
#include <map>

#include "plan/plan_internal.h"

namespace tailor::plan_detail {

namespace {

struct Side {
  Place place = Place::cpu;
  Target target;
  int layer_begin = 0, layer_end = 0;  // [begin, end)
  bool embd = false, out = false;
  DType kv = DType::f16;
  std::vector<const TensorPlan*> matrices;
};

// "layers 0-22 + lm_head": the parts of a side an op class touches.
std::string side_where(const Side& s, bool tied, bool embd, bool out) {
  std::string w;
  auto add = [&](const std::string& x) { w += (w.empty() ? "" : " + ") + x; };
  if (embd && s.embd && !tied) add("embedding");
  if (s.layer_end > s.layer_begin)
    add(s.layer_end - s.layer_begin == 1 ? cat("layer ", s.layer_begin)
                                         : cat("layers ", s.layer_begin, "-", s.layer_end - 1));
  if (out && s.out) add(tied ? "lm_head (tied embedding)" : "lm_head");
  return w;
}

// The storage dtype most of the side's matrix bytes use (tensors kept wider are exceptions).
DType dominant(const Side& s) {
  std::map<DType, uint64_t> bytes;
  for (const TensorPlan* t : s.matrices)
    if (!t->kept_wider) bytes[t->storage] += t->bytes;
  if (bytes.empty()) return DType::f32;
  return std::max_element(bytes.begin(), bytes.end(), [](auto& a, auto& b) { return a.second < b.second; })
      ->first;
}

}  // namespace

Status add_ops_and_warnings(Plan& p) {
  const bool tied = p.hp.tie_word_embeddings || !find_tensor_plan(p, "lm_head.weight");
  std::vector<Side> sides;
  if (p.use_gpu && (p.n_gpu_layers > 0 || p.embd_on_gpu || p.output_on_gpu)) {
    Side g;
    g.place = Place::gpu;
    g.target = p.gpu;
    g.layer_end = p.n_gpu_layers;
    g.embd = p.embd_on_gpu;
    g.out = p.output_on_gpu;
    g.kv = p.kv_dtype_gpu;
    sides.push_back(g);
  }
  if (p.n_gpu_layers < p.n_layer || !p.embd_on_gpu || !p.output_on_gpu) {
    Side c;
    c.place = Place::cpu;
    c.target = p.cpu;
    c.layer_begin = p.n_gpu_layers;
    c.layer_end = p.n_layer;
    c.embd = !p.embd_on_gpu;
    c.out = !p.output_on_gpu;
    c.kv = p.kv_dtype_cpu;
    sides.push_back(c);
  }
  for (const TensorPlan& t : p.tensors)
    for (Side& s : sides)
      if (t.place == s.place && t.shape.rank >= 2) s.matrices.push_back(&t);

  auto add = [&](const Side& s, OpClass op, const std::string& where, DType data,
                 const std::string& note) -> Status {
    KernelChoice k = kernel_for(s.target, op, data);
    if (!k.exists)
      return unsupported(cat("no kernel for ", op_class_name(op), " on ", s.target.label(), " with ",
                             dtype_name(data), " (", where, "): ", k.note));
    OpPlan o;
    o.op = op;
    o.place = s.place;
    o.where = cat(where, " on ", s.target.label());
    o.kernel = k.kernel;
    o.data = data;
    o.compute = k.compute;
    o.slow = k.slow;
    o.note = note.empty() ? k.note : (k.note.empty() ? note : note + "; " + k.note);
    p.ops.push_back(std::move(o));
    return {};
  };

  for (const Side& s : sides) {
    const std::string mm_where = side_where(s, tied, false, true);
    const std::string layers_where = side_where(s, tied, false, false);
    const DType main = dominant(s);
    const bool has_layers = s.layer_end > s.layer_begin;
    if (const TensorPlan* e = find_tensor_plan(p, "model.embed_tokens.weight"); e && e->place == s.place)
      TAILOR_RETURN_IF_ERROR(add(s, OpClass::embedding, "token embedding", e->storage, ""));
    if (!mm_where.empty()) TAILOR_RETURN_IF_ERROR(add(s, OpClass::matmul, mm_where, main, ""));
    for (const TensorPlan* t : s.matrices) {
      if (t->storage == main) continue;
      std::string note;
      if (t->kept_wider)
        note =
            cat("max |w| = ", t->max_abs.value_or(0), " > 65504 (f16 max): kept in ", dtype_name(t->storage));
      TAILOR_RETURN_IF_ERROR(add(s, OpClass::matmul, t->name, t->storage, note));
    }
    if (has_layers) {
      const uint64_t kv =
          uint64_t(s.layer_end - s.layer_begin) * kv_bytes_per_layer(p.hp, p.ctx, p.batch, s.kv);
      TAILOR_RETURN_IF_ERROR(add(s, OpClass::attention, layers_where, s.kv, ""));
      TAILOR_RETURN_IF_ERROR(add(s, OpClass::kv_cache, layers_where, s.kv,
                                 cat(format_bytes(kv), " for ctx ", p.ctx, " x batch ", p.batch)));
    }
    if (has_layers || s.out)
      TAILOR_RETURN_IF_ERROR(
          add(s, OpClass::norm,
              layers_where.empty() ? "final norm" : layers_where + (s.out ? " + final norm" : ""), DType::f32,
              ""));
  }

  // ---- warnings ----
  for (const OpPlan& o : p.ops)
    if (o.slow)
      p.warnings.push_back(
          cat("slow path: ", op_class_name(o.op), " for ", o.where, " runs ", o.kernel, ": ", o.note));
  int unchecked = 0;
  for (const TensorPlan& t : p.tensors) {
    if (t.kept_wider)
      p.warnings.push_back(cat("tensor ", t.name, ": max |w| = ", t.max_abs.value_or(0),
                               " exceeds f16's range (65504): kept in ", dtype_name(t.storage), " (",
                               format_bytes(t.bytes), ") instead of f16 on ",
                               t.place == Place::gpu ? p.gpu.label() : "cpu"));
    unchecked += t.range_unchecked;
  }
  if (unchecked > 0)
    p.warnings.push_back(
        cat(unchecked,
            " tensor(s) are planned as f16 without a range check (no weight data was given): "
            "the loader's conversion refuses any with |w| > 65504"));
  const Target& primary = p.use_gpu && p.n_gpu_layers > 0 ? p.gpu : p.cpu;
  if (p.options.dtype) {
    std::map<DType, uint64_t> stored;
    for (const TensorPlan& t : p.tensors) stored[t.stored] += t.bytes;
    const DType model = std::max_element(stored.begin(), stored.end(), [](auto& a, auto& b) {
                          return a.second < b.second;
                        })->first;
    const DType automatic = preferred_storage(primary, model);
    if (*p.options.dtype != automatic) {
      std::string why;
      if (*p.options.dtype == DType::f32)
        why = ": f32 doubles the weights' bytes and roughly halves decode speed";
      const KernelChoice k = kernel_for(primary, OpClass::matmul, *p.options.dtype);
      if (k.slow) why = cat(": ", k.note);
      p.warnings.push_back(cat("--dtype ", dtype_name(*p.options.dtype), " overrides the plan's choice (",
                               dtype_name(automatic), " on ", primary.label(), ")", why));
    }
  }
  if (p.use_gpu && p.n_gpu_layers < p.n_layer && p.fits) {
    std::string bw =
        p.device.cpu.bandwidth_gbs > 0 ? cat(" (~", int(p.device.cpu.bandwidth_gbs), " GB/s)") : "";
    p.warnings.push_back(cat("only ", p.n_gpu_layers, " of ", p.n_layer, " layers fit on ", p.gpu.label(),
                             " (", format_bytes(p.mem.gpu_free), " free): the other ",
                             p.n_layer - p.n_gpu_layers, " run on the CPU, whose memory bandwidth", bw,
                             " bounds decode speed"));
  }
  if (p.use_gpu && p.gpu.backend == Backend::metal)
    p.warnings.push_back(
        cat("tailor has no Metal backend yet: this plan shows what it would do on ", p.gpu.gpu.name));
  return {};
}

}  // namespace tailor::plan_detail
