// tailor bench: prefill and decode speed of one model on one device, with the numbers that say where it
// stands against the hardware (achieved GB/s over the measured device-to-device copy bandwidth) and peak
// memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "command.h"
#include "core/json.h"
#include "model/model_spec.h"
#include "model/runner.h"
#include "model/split_runner.h"
#if TAILOR_HAS_CUDA
#include "backend/cuda/cuda_runner.h"
#include "backend/cuda/device.cuh"
#endif

namespace tailor::cli {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct BenchResult {
  double prefill_s = 0, decode_s = 0;  // medians: one prefill of batch x prompt; gen decode steps
};

// prompt tokens for each of `batch` sequences in one forward, then `gen` decode steps of the whole batch
// (greedy on the device). Repeated `reps` times over the same positions (the cache rows are simply
// rewritten).
Result<BenchResult> time_runner(Runner& r, int prompt, int gen, int batch, int reps) {
  const int V = r.hparams().n_vocab;
  std::mt19937 rng(1234);
  std::vector<std::vector<int32_t>> toks(static_cast<size_t>(batch)), pos(static_cast<size_t>(batch));
  std::vector<SeqBatchEntry> pre;
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < prompt; ++i) {
      toks[size_t(b)].push_back(int32_t(rng() % uint32_t(V)));
      pos[size_t(b)].push_back(i);
    }
    pre.push_back({b, toks[size_t(b)], pos[size_t(b)], false});
  }
  std::vector<int32_t> ids, next(static_cast<size_t>(batch)), p(static_cast<size_t>(batch));
  auto decode = [&](int steps) -> Status {
    for (int b = 0; b < batch; ++b) {
      next[size_t(b)] = ids[size_t(b)];
      p[size_t(b)] = prompt;
    }
    std::vector<SeqBatchEntry> d(static_cast<size_t>(batch));
    for (int s = 0; s < steps; ++s) {
      for (int b = 0; b < batch; ++b) d[size_t(b)] = {b, {&next[size_t(b)], 1}, {&p[size_t(b)], 1}, false};
      TAILOR_RETURN_IF_ERROR(r.forward_argmax(d, ids));
      for (int b = 0; b < batch; ++b) {
        next[size_t(b)] = ids[size_t(b)];
        ++p[size_t(b)];
      }
    }
    return {};
  };
  // Warm-up: first prefill (algorithm selection, first-pass checks) and the decode graph capture.
  TAILOR_RETURN_IF_ERROR(r.forward_argmax(pre, ids));
  TAILOR_RETURN_IF_ERROR(decode(std::min(gen, 4)));
  std::vector<double> tp, td;
  for (int i = 0; i < reps; ++i) {
    double t = now_s();
    TAILOR_RETURN_IF_ERROR(r.forward_argmax(pre, ids));
    tp.push_back(now_s() - t);
    t = now_s();
    TAILOR_RETURN_IF_ERROR(decode(gen));
    td.push_back(now_s() - t);
  }
  return BenchResult{median(tp), median(td)};
}

int run_bench(const std::vector<std::string>& argv) {
  auto a = Args::parse(argv, {"prompt", "gen", "batch", "dtype", "kv-dtype", "device", "reps", "gpu-layers"},
                       {"json"});
  if (!a.ok()) return usage_error("bench", a.status().message());
  if (a->positional().size() != 1) return usage_error("bench", "expected exactly one MODEL folder");
  auto prompt = a->get_int("prompt", 512), gen = a->get_int("gen", 128), batch = a->get_int("batch", 1),
       reps = a->get_int("reps", 3);
  if (!prompt.ok() || !gen.ok() || !batch.ok() || !reps.ok() || *prompt < 1 || *gen < 1 || *batch < 1 ||
      *reps < 1)
    return usage_error("bench", "--prompt, --gen, --batch and --reps must be positive integers");
  const std::string device = a->get_or("device", "cuda");
  auto spec_r = load_model_spec(a->positional()[0]);
  if (!spec_r.ok()) return fail(spec_r.status());
  auto spec = std::make_shared<const ModelSpec>(std::move(spec_r).value());
  const HParams& hp = spec->hp;
  RunnerOptions ro;
  ro.n_ctx = int(*prompt + *gen + 8);
  ro.n_slots = int(*batch);
  auto wt = dtype_from_name(a->get_or("dtype", "bf16"));
  auto kt = dtype_from_name(a->get_or("kv-dtype", a->get_or("dtype", "bf16")));
  if (!wt || !kt) return usage_error("bench", "--dtype / --kv-dtype: expected f32, f16 or bf16");
  ro.weight_dtype = *wt;
  ro.kv_dtype = *kt;
  auto gpu_layers = a->get_int("gpu-layers", hp.n_layer);
  if (!gpu_layers.ok() || *gpu_layers < 1)
    return usage_error("bench", "--gpu-layers must be a positive integer");
  const int n_gpu = int(std::min<long long>(*gpu_layers, hp.n_layer));
  if (n_gpu < hp.n_layer && device != "cuda")
    return usage_error("bench",
                       "--gpu-layers splits the model between the GPU and the CPU: use --device cuda");

  double copy_gbs = 0;
  std::string dev_name = "cpu";
  std::unique_ptr<Runner> runner;
  const double t_load = now_s();
  if (device == "cuda") {
#if TAILOR_HAS_CUDA
    auto dev = cuda::open_device(0, ro.weight_dtype);
    if (!dev.ok()) return fail(dev.status());
    dev_name = dev->name;
    auto bw = cuda::measure_copy_bandwidth(1ull << 30, 10);
    if (!bw.ok()) return fail(bw.status());
    copy_gbs = *bw / 1e9;
    RunnerOptions gro = ro;
    gro.layer_end = n_gpu;
    auto r = make_cuda_runner(spec, gro);
    if (!r.ok()) return fail(r.status());
    runner = std::move(r).value();
    if (n_gpu < hp.n_layer) {  // layers [n_gpu, L), the embedding and the head on the CPU
      RunnerOptions cro = ro;
      cro.layer_begin = n_gpu;
      auto c = make_cpu_runner(spec, cro);
      if (!c.ok()) return fail(c.status());
      auto s = make_split_runner(std::move(runner), "cuda:0", std::move(c).value(), "cpu");
      if (!s.ok()) return fail(s.status());
      runner = std::move(s).value();
      dev_name += cat(" + cpu (", n_gpu, "/", hp.n_layer, " layers on the GPU)");
    }
#else
    return fail(unsupported("bench --device cuda: this tailor was built without CUDA; use --device cpu"));
#endif
  } else if (device == "cpu") {
    auto r = make_cpu_runner(spec, ro);
    if (!r.ok()) return fail(r.status());
    runner = std::move(r).value();
  } else {
    return usage_error("bench", "--device must be cuda or cpu");
  }
  const double load_s = now_s() - t_load;
  std::fprintf(stderr, "tailor: bench on %s: %s\n", dev_name.c_str(), runner->describe().c_str());
  auto res = time_runner(*runner, int(*prompt), int(*gen), int(*batch), int(*reps));
  if (!res.ok()) return fail(res.status());

  // Bytes one decode step must read: every matrix once (the embedding only one row per sequence), the norms,
  // and each sequence's KV cache up to its position (averaged over the generated tokens).
  const uint64_t D = uint64_t(hp.n_embd), Q = uint64_t(hp.q_dim()), KV = uint64_t(hp.kv_dim()),
                 F = uint64_t(hp.n_ff), Vv = uint64_t(hp.n_vocab);
  const uint64_t mats = (D * (Q + 2 * KV) + D * Q + 3 * D * F) * uint64_t(hp.n_layer) + Vv * D;
  const double weight_bytes = double(dtype_row_bytes(ro.weight_dtype, mats));
  const double kv_bytes = double(*batch) * 2.0 * double(hp.n_layer) * double(KV) *
                          (double(*prompt) + double(*gen) / 2.0) * double(dtype_size(ro.kv_dtype));
  const double step_s = res->decode_s / double(*gen);
  const double gbs = (weight_bytes + kv_bytes) / step_s / 1e9;
  const double prefill_tps = double(*batch) * double(*prompt) / res->prefill_s;
  const double decode_tps = double(*batch) * double(*gen) / res->decode_s;
  uint64_t mem_used = 0, runner_bytes = 0;
#if TAILOR_HAS_CUDA
  if (device == "cuda") {
    const auto mi = cuda::memory_info();
    mem_used = mi.total - mi.free;
    const Runner* gpu_part = split_front(*runner) ? split_front(*runner) : runner.get();
    if (const CudaRunnerStats* st = cuda_runner_stats(*gpu_part))
      runner_bytes = st->weight_bytes + st->kv_bytes + st->scratch_bytes;
  }
#endif
  Json j = {{"model", a->positional()[0]},
            {"device", dev_name},
            {"weights", dtype_name(ro.weight_dtype)},
            {"kv", dtype_name(ro.kv_dtype)},
            {"batch", *batch},
            {"prompt", *prompt},
            {"gen", *gen},
            {"load_s", load_s},
            {"prefill_ms", res->prefill_s * 1e3},
            {"prefill_tok_s", prefill_tps},
            {"decode_step_ms", step_s * 1e3},
            {"decode_tok_s", decode_tps},
            {"decode_GBps", gbs},
            {"copy_GBps", copy_gbs},
            {"pct_of_copy", copy_gbs > 0 ? 100.0 * gbs / copy_gbs : 0.0},
            {"gpu_mem_used_GB", double(mem_used) / 1e9},
            {"runner_alloc_GB", double(runner_bytes) / 1e9}};
  if (a->has("json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model        %s (%s weights, %s KV) on %s\n", a->positional()[0].c_str(),
              dtype_name(ro.weight_dtype), dtype_name(ro.kv_dtype), dev_name.c_str());
  std::printf("prefill      %d x %lld tokens: %.2f ms = %.0f tok/s\n", int(*batch), *prompt,
              res->prefill_s * 1e3, prefill_tps);
  std::printf("decode       batch %lld, %lld steps: %.3f ms/step = %.1f tok/s\n", *batch, *gen, step_s * 1e3,
              decode_tps);
  if (copy_gbs > 0)
    std::printf(
        "bandwidth    %.0f GB/s read per decode step = %.1f%% of the measured copy bandwidth (%.0f GB/s)\n",
        gbs, 100.0 * gbs / copy_gbs, copy_gbs);
  if (mem_used)
    std::printf("GPU memory   %.2f GB in use (runner allocations %.2f GB)\n", double(mem_used) / 1e9,
                double(runner_bytes) / 1e9);
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

TAILOR_COMMAND(
    bench, "bench", "measure prefill and decode speed of a model",
    "usage: tailor bench MODEL [--prompt 512] [--gen 128] [--batch 1] [--dtype bf16|f16|f32]\n"
    "                    [--kv-dtype DT] [--device cuda|cpu] [--gpu-layers N] [--reps 3] [--json]\n\n"
    "Random prompt tokens; prefill = one forward of batch x prompt tokens; decode = gen greedy steps of\n"
    "the whole batch (token ids picked on the device). Prints tok/s, the bytes a decode step reads per\n"
    "second against the measured device-to-device copy bandwidth, and GPU memory. Medians of --reps runs.\n"
    "--gpu-layers N (below the model's layer count): a GPU/CPU split, the first N layers on the GPU, the\n"
    "rest, the embedding and lm_head on the CPU.",
    run_bench);

}  // namespace tailor::cli
