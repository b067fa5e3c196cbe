#include "engine/load.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/log.h"
#include "core/mmap.h"
#ifdef TAILOR_HAS_CUDA
#include "backend/cuda/cuda_runner.h"
#endif

namespace tailor {

uint64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// Touches every page of the weights once so the first forward pass is not a storm of page faults, and shows
// progress for large models.
static void prefault(const ModelSpec& spec, bool progress) {
  uint64_t total = 0, done = 0;
  for (const auto& f : spec.weights->files()) total += f->size();
  const bool show = progress && total > (256ull << 20);
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  volatile uint8_t sink = 0;
  int last = -1;
  for (const auto& f : spec.weights->files()) {
    f->advise_willneed(0, f->size());
    constexpr uint64_t kStep = 64ull << 20;
    for (uint64_t off = 0; off < f->size(); off += kStep) {
      const uint64_t end = std::min(f->size(), off + kStep);
      for (uint64_t p = off; p < end; p += page) sink = sink + f->data()[p];
      done += end - off;
      const int pct = int(100 * done / std::max<uint64_t>(total, 1));
      if (show && pct != last) {
        std::fprintf(stderr, "\rtailor: loading weights [%-40s] %3d%% of %.1f GB",
                     std::string(size_t(pct * 40 / 100), '#').c_str(), pct, double(total) / 1e9);
        last = pct;
      }
    }
  }
  if (show) std::fprintf(stderr, "\n");
}

Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& opt) {
  LoadedModel m;
  auto spec = load_model_spec(dir);
  if (!spec.ok()) return spec.status();
  m.spec = std::make_shared<const ModelSpec>(std::move(spec).value());
  if (opt.device != "auto" && opt.device != "cpu" && opt.device != "cuda")
    return invalid_argument(cat("unknown --device '", opt.device, "' (valid: auto, cpu, cuda)"));

  // The Plan decides storage dtypes and placement; --device cpu plans as if there were no GPU.
  DeviceInfo dev = probe_devices();
  if (opt.device == "cpu") {
    dev.gpus.clear();
    dev.no_gpu_reason = "--device cpu";
  } else if (opt.device == "cuda" && dev.gpus.empty()) {
    return unsupported(
        cat("--device cuda: no usable CUDA device (", dev.no_gpu_reason, "); use --device cpu"));
  }
  PlanOptions po;
  po.ctx = opt.runner.n_ctx;
  po.batch = opt.runner.n_slots;
  po.dtype = opt.dtype;
  po.model_name = dir;
  TAILOR_ASSIGN_OR_RETURN(m.plan, make_plan(*m.spec, dev, po));
  if (m.plan.use_gpu && m.plan.n_gpu_layers < m.plan.n_layer) {
    // Split GPU/CPU placements are planned but not run yet: plan (and check memory) for the CPU alone
    // instead.
    log_warn("the plan splits ", m.plan.n_gpu_layers, "/", m.plan.n_layer,
             " layers onto the GPU; this build cannot run a split yet, so the model runs on the CPU");
    dev.gpus.clear();
    dev.no_gpu_reason = "GPU/CPU split not supported yet";
    TAILOR_ASSIGN_OR_RETURN(m.plan, make_plan(*m.spec, dev, po));
  }
  TAILOR_RETURN_IF_ERROR(plan_status(m.plan));
  if (opt.verbose) {
    log_info("plan: ", plan_summary_line(m.plan));
    for (const auto& w : plan_warnings(m.plan)) log_warn(w);
  }

  prefault(*m.spec, opt.progress);
  RunnerOptions ro = opt.runner;
  const std::string probe_tensor = "model.layers.0.mlp.up_proj.weight";
  const TensorPlan* tp = find_tensor_plan(m.plan, probe_tensor);
  if (m.plan.use_gpu) {
#ifdef TAILOR_HAS_CUDA
    ro.weight_dtype = tp ? tp->storage : DType::bf16;
    ro.kv_dtype = m.plan.kv_dtype_gpu;
    ro.act_dtype = ro.weight_dtype == DType::f32 ? DType::f32 : ro.weight_dtype;
    TAILOR_ASSIGN_OR_RETURN(m.runner, make_cuda_runner(m.spec, ro));
#else
    return internal_error("the plan chose a GPU but this build has no CUDA backend");
#endif
  } else {
    if (m.plan.use_gpu)
      log_warn(
          "the plan splits layers between GPU and CPU; this build runs such splits on the CPU only for now");
    // The CPU runner stores every matrix in one dtype: the Plan's choice for the decoder matrices.
    ro.weight_dtype = tp ? tp->storage : m.spec->weights->find(probe_tensor)->dtype;
    ro.kv_dtype = opt.kv_dtype.value_or(m.plan.kv_dtype_cpu);  // the KV cache the memory plan budgeted
    TAILOR_ASSIGN_OR_RETURN(m.runner, make_cpu_runner(m.spec, ro));
  }
  if (file_exists(dir + "/tokenizer.json")) {
    auto tok = Tokenizer::from_model_dir(dir);
    if (!tok.ok()) return tok.status();
    m.tokenizer = std::move(tok).value();
  } else if (opt.need_tokenizer) {
    return not_found(
        cat(dir, ": no tokenizer.json; pass token ids with --prompt-ids, or add the tokenizer files"));
  }
  for (int id : m.spec->hp.eos_token_ids) m.stop_ids.push_back(id);
  if (m.stop_ids.empty() && m.tokenizer && m.tokenizer->eos_id())
    m.stop_ids.push_back(*m.tokenizer->eos_id());
  return m;
}

}  // namespace tailor
