// Printing a Plan: the table of `tailor plan`, its JSON form, and the one-line summary run/serve print.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "core/json.h"
#include "plan/plan.h"

namespace tailor {

namespace {

// One row of the placement summary: a run of consecutive parts on the same side with the same dtypes.
struct PlaceRow {
  std::string what;
  Place place = Place::cpu;
  std::string dtypes;
  uint64_t bytes = 0;
};

std::string dtype_set(const std::vector<const TensorPlan*>& ts) {
  std::set<std::string> names;
  for (const TensorPlan* t : ts)
    if (t->shape.rank >= 2) names.insert(dtype_name(t->storage));
  if (names.empty())
    for (const TensorPlan* t : ts) names.insert(dtype_name(t->storage));
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : "+") + n;
  return s;
}

std::vector<PlaceRow> placement_rows(const Plan& p) {
  std::vector<std::vector<const TensorPlan*>> layers(size_t(p.n_layer));
  std::vector<const TensorPlan*> embd, out;
  const bool tied = p.hp.tie_word_embeddings || !find_tensor_plan(p, "lm_head.weight");
  for (const TensorPlan& t : p.tensors) {
    if (t.layer >= 0) {
      layers[size_t(t.layer)].push_back(&t);
    } else if (t.name == "model.embed_tokens.weight" && !tied) {
      embd.push_back(&t);
    } else {
      out.push_back(&t);
    }
  }
  auto bytes_of = [](const std::vector<const TensorPlan*>& ts) {
    uint64_t b = 0;
    for (const TensorPlan* t : ts) b += t->bytes;
    return b;
  };
  std::vector<PlaceRow> rows;
  if (!embd.empty()) rows.push_back({"embedding", embd[0]->place, dtype_set(embd), bytes_of(embd)});
  int start = 0;
  for (int i = 0; i <= p.n_layer; ++i) {
    const bool boundary =
        i == p.n_layer || (i > start && (layers[size_t(i)].empty() || layers[size_t(start)].empty() ||
                                         layers[size_t(i)][0]->place != layers[size_t(start)][0]->place ||
                                         dtype_set(layers[size_t(i)]) != dtype_set(layers[size_t(start)])));
    if (!boundary) continue;
    if (i > start) {
      PlaceRow r;
      r.what = i - start == 1 ? cat("layer ", start) : cat("layers ", start, "-", i - 1);
      r.place = layers[size_t(start)].empty() ? Place::cpu : layers[size_t(start)][0]->place;
      r.dtypes = dtype_set(layers[size_t(start)]);
      for (int j = start; j < i; ++j) r.bytes += bytes_of(layers[size_t(j)]);
      rows.push_back(r);
    }
    start = i;
  }
  if (!out.empty())
    rows.push_back({tied ? "output (norm + tied lm_head)" : "output (norm + lm_head)",
                    std::any_of(out.begin(), out.end(), [](auto* t) { return t->place == Place::gpu; })
                        ? Place::gpu
                        : Place::cpu,
                    dtype_set(out), bytes_of(out)});
  return rows;
}

std::string side_label(const Plan& p, Place place) {
  return place == Place::gpu ? p.gpu.label() : "cpu";
}

std::string pad(const std::string& s, size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

std::string weights_dtypes(const Plan& p) {
  // Dtypes holding at least 1% of the bytes (norm vectors in f32 are not worth naming).
  std::string s;
  for (auto& [t, b] : p.mem.weights_by_dtype)
    if (b * 100 >= p.mem.weights_total()) s += cat(s.empty() ? "" : "+", dtype_name(t));
  return s.empty() ? "f32" : s;
}

}  // namespace

std::vector<std::string> plan_warnings(const Plan& plan) {
  return plan.warnings;
}

std::string plan_summary_line(const Plan& p) {
  const GpuInfo& g = p.gpu.gpu;
  std::string dev = p.use_gpu ? cat(p.gpu.label(), " ", g.name) : cat("cpu ", p.device.cpu.model);
  std::string s = cat(p.model_name, " on ", dev, ": ", weights_dtypes(p), " weights ",
                      format_bytes(p.mem.weights_total()), ", ");
  if (p.use_gpu) {
    s += cat(p.n_gpu_layers, "/", p.n_layer, " layers on GPU, ");
  } else {
    s += cat(p.n_layer, " layers on CPU, ");
  }
  s += cat("ctx ", p.ctx, " x batch ", p.batch, " (max ", p.max_ctx, "), KV ",
           dtype_name(p.n_gpu_layers > 0 ? p.kv_dtype_gpu : p.kv_dtype_cpu), " ",
           format_bytes(p.mem.gpu_kv + p.mem.host_kv), "; ");
  if (p.use_gpu && p.mem.gpu_need > 0)
    s += cat("GPU ", format_bytes(p.mem.gpu_need), " of ", format_bytes(p.mem.gpu_free), ", ");
  s += cat("RAM ", format_bytes(p.mem.host_need), " of ", format_bytes(p.mem.host_available));
  if (!p.fits) s += "; DOES NOT FIT";
  if (!p.warnings.empty()) s += cat("; ", p.warnings.size(), " warning(s)");
  return s;
}

std::string format_plan(const Plan& p) {
  const HParams& hp = p.hp;
  std::string s = cat("plan for ", p.model_name, "\n\n", format_device_info(p.device), "\n");
  std::map<DType, uint64_t> stored;
  for (const TensorPlan& t : p.tensors)
    stored[t.stored] += dtype_row_bytes(t.stored, uint64_t(t.shape.numel()));
  std::string st;
  for (auto& [t, b] : stored) st += cat(st.empty() ? "" : ", ", dtype_name(t), " ", format_bytes(b));
  s += cat("model:   ", hp.n_layer, " layers, hidden ", hp.n_embd, ", ", hp.n_head, " heads / ", hp.n_head_kv,
           " KV heads x ", hp.head_dim, ", FFN ", hp.n_ff, ", vocab ", hp.n_vocab,
           hp.tie_word_embeddings ? ", tied embeddings" : "", "; stored ", st, "\n");
  s += cat("context: ", p.ctx, " tokens x batch ", p.batch, " (model limit ", p.ctx_limit,
           "; longest that fits this placement: ", p.max_ctx, ")\n\n");

  s += "placement:\n";
  for (const PlaceRow& r : placement_rows(p))
    s += cat("  ", pad(r.what, 30), pad(side_label(p, r.place), 20), pad(r.dtypes, 10), format_bytes(r.bytes),
             "\n");

  s += "\nops:\n";
  s += cat("  ", pad("op", 11), pad("data", 6), pad("compute", 8), pad("where", 44), "kernel\n");
  for (const OpPlan& o : p.ops) {
    s += cat("  ", pad(op_class_name(o.op), 11), pad(dtype_name(o.data), 6), pad(dtype_name(o.compute), 8),
             pad(o.where, 44), o.slow ? "[SLOW] " : "", o.kernel, "\n");
    if (!o.note.empty()) s += cat("  ", std::string(69, ' '), "(", o.note, ")\n");
  }

  const MemoryBudget& m = p.mem;
  const bool gpu = p.use_gpu && m.gpu_need > 0;
  s += cat("\nmemory", m.unified ? " (unified: the GPU's share is host RAM too)" : "", ":\n");
  s += cat("  ", pad("", 22), pad(gpu ? p.gpu.label() : "", 24), "host\n");
  auto row = [&](const std::string& name, uint64_t g, uint64_t h) {
    s += cat("  ", pad(name, 22), pad(gpu ? (g ? format_bytes(g) : "-") : "", 24), h ? format_bytes(h) : "-",
             "\n");
  };
  row("weights", m.gpu_weights, m.host_weights);
  const std::string kv_types = m.gpu_kv && m.host_kv
                                   ? cat(dtype_name(p.kv_dtype_gpu), "/", dtype_name(p.kv_dtype_cpu))
                                   : dtype_name(m.gpu_kv ? p.kv_dtype_gpu : p.kv_dtype_cpu);
  row(cat("KV cache (", kv_types, ")"), m.gpu_kv, m.host_kv);
  row("activations+workspace", m.gpu_act, m.host_act);
  row("reserve / margin", m.gpu_reserve, m.host_margin);
  row("load staging", 0, m.host_staging);
  row(m.unified ? "need (host incl. GPU)" : "need", m.gpu_need, m.host_need);
  s += cat("  ", pad("available", 22), pad(gpu ? format_bytes(m.gpu_free) + " free" : "", 24),
           format_bytes(m.host_available), " available\n");
  std::string wd;
  for (auto& [t, b] : m.weights_by_dtype)
    wd += cat(wd.empty() ? "" : ", ", dtype_name(t), " ", format_bytes(b));
  s += cat("  weights by storage dtype: ", wd, "\n");

  if (!p.warnings.empty()) {
    s += "\nwarnings:\n";
    for (const std::string& w : p.warnings) s += cat("  - ", w, "\n");
  }
  s += cat("\n", p.fits ? "fits: " + plan_summary_line(p) : "DOES NOT FIT: " + p.refusal, "\n");
  return s;
}

std::string plan_json(const Plan& p) {
  OrderedJson j;
  j["model"] = p.model_name;
  j["fits"] = p.fits;
  if (!p.fits) j["refusal"] = p.refusal;
  j["summary"] = plan_summary_line(p);
  j["device"] = OrderedJson::parse(device_info_json(p.device));
  j["gpu"] = p.use_gpu ? OrderedJson(p.gpu.label()) : OrderedJson(nullptr);
  j["ctx"] = p.ctx;
  j["batch"] = p.batch;
  j["ctx_limit"] = p.ctx_limit;
  j["max_ctx"] = p.max_ctx;
  j["n_layer"] = p.n_layer;
  j["n_gpu_layers"] = p.n_gpu_layers;
  j["embedding_on_gpu"] = p.embd_on_gpu;
  j["output_on_gpu"] = p.output_on_gpu;
  j["kv_dtype"] = {{"gpu", dtype_name(p.kv_dtype_gpu)}, {"cpu", dtype_name(p.kv_dtype_cpu)}};
  j["placement"] = OrderedJson::array();
  for (const PlaceRow& r : placement_rows(p))
    j["placement"].push_back(
        {{"what", r.what}, {"device", side_label(p, r.place)}, {"dtypes", r.dtypes}, {"bytes", r.bytes}});
  j["ops"] = OrderedJson::array();
  for (const OpPlan& o : p.ops)
    j["ops"].push_back({{"op", op_class_name(o.op)},
                        {"place", place_name(o.place)},
                        {"where", o.where},
                        {"kernel", o.kernel},
                        {"data", dtype_name(o.data)},
                        {"compute", dtype_name(o.compute)},
                        {"slow", o.slow},
                        {"note", o.note}});
  const MemoryBudget& m = p.mem;
  j["memory"] = {{"unified", m.unified},
                 {"gpu",
                  {{"weights", m.gpu_weights},
                   {"kv", m.gpu_kv},
                   {"activations", m.gpu_act},
                   {"reserve", m.gpu_reserve},
                   {"need", m.gpu_need},
                   {"free", m.gpu_free}}},
                 {"host",
                  {{"weights", m.host_weights},
                   {"kv", m.host_kv},
                   {"activations", m.host_act},
                   {"staging", m.host_staging},
                   {"margin", m.host_margin},
                   {"need", m.host_need},
                   {"available", m.host_available}}}};
  for (auto& [t, b] : m.weights_by_dtype) j["memory"]["weights_by_dtype"][dtype_name(t)] = b;
  j["tensors"] = OrderedJson::array();
  for (const TensorPlan& t : p.tensors) {
    OrderedJson x = {
        {"name", t.name},
        {"shape", std::vector<int64_t>(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.rank)},
        {"layer", t.layer},
        {"stored", dtype_name(t.stored)},
        {"storage", dtype_name(t.storage)},
        {"compute", dtype_name(t.compute)},
        {"place", place_name(t.place)},
        {"bytes", t.bytes}};
    if (t.max_abs) x["max_abs"] = *t.max_abs;
    if (t.kept_wider) x["kept_wider"] = true;
    if (t.range_unchecked) x["range_unchecked"] = true;
    j["tensors"].push_back(std::move(x));
  }
  j["warnings"] = p.warnings;
  return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace tailor
