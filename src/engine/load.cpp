#include "engine/load.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/log.h"
#include "core/mmap.h"
#include "model/split_runner.h"
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
  po.gpu_layers = opt.gpu_layers;
  po.model_name = dir;
  TAILOR_ASSIGN_OR_RETURN(m.plan, make_plan(*m.spec, dev, po));
  TAILOR_RETURN_IF_ERROR(plan_status(m.plan));
  const int n_gpu = m.plan.use_gpu ? m.plan.n_gpu_layers : 0, L = m.plan.n_layer;
  if (opt.verbose) {
    log_info("plan: ", plan_summary_line(m.plan));
    for (const auto& w : plan_warnings(m.plan)) log_warn(w);
    if (m.plan.use_gpu && n_gpu == 0)
      log_warn("the plan puts no layer on the GPU: the model runs on the CPU");
  }

  prefault(*m.spec, opt.progress);
  // The storage dtype the Plan chose for layer l's matrices (on that layer's side of the split).
  auto layer_dtype = [&](int l) {
    const std::string name = cat("model.layers.", l, ".mlp.up_proj.weight");
    const TensorPlan* tp = find_tensor_plan(m.plan, name);
    return tp ? tp->storage : m.spec->weights->find(name)->dtype;
  };
  // GPU side: layers [0, n_gpu), and the embedding and head when it holds every layer.
  RunnerOptions gpu_ro = opt.runner;
  gpu_ro.weight_dtype = layer_dtype(0);
  gpu_ro.kv_dtype = m.plan.kv_dtype_gpu;
  gpu_ro.act_dtype = gpu_ro.weight_dtype == DType::f32 ? DType::f32 : gpu_ro.weight_dtype;
  gpu_ro.layer_begin = 0;
  gpu_ro.layer_end = n_gpu;
  // CPU side: layers [n_gpu, L), the head, and the embedding table (the Plan keeps it in host RAM for a
  // split). The CPU runner stores all its matrices in one dtype: the Plan's choice for its decoder matrices.
  RunnerOptions cpu_ro = opt.runner;
  cpu_ro.weight_dtype = layer_dtype(std::min(n_gpu, L - 1));
  cpu_ro.kv_dtype = opt.kv_dtype.value_or(m.plan.kv_dtype_cpu);  // the KV cache the memory plan budgeted
  cpu_ro.layer_begin = n_gpu;
  cpu_ro.layer_end = L;
  if (n_gpu > 0) {
#ifdef TAILOR_HAS_CUDA
    TAILOR_ASSIGN_OR_RETURN(auto gpu, make_cuda_runner(m.spec, gpu_ro));
    if (n_gpu == L) {
      m.runner = std::move(gpu);
    } else {
      TAILOR_ASSIGN_OR_RETURN(auto cpu, make_cpu_runner(m.spec, cpu_ro));
      TAILOR_ASSIGN_OR_RETURN(
          m.runner,
          make_split_runner(std::move(gpu), cat("cuda:", m.plan.options.gpu_index), std::move(cpu), "cpu"));
    }
#else
    return internal_error("the plan chose a GPU but this build has no CUDA backend");
#endif
  } else {
    TAILOR_ASSIGN_OR_RETURN(m.runner, make_cpu_runner(m.spec, cpu_ro));
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
