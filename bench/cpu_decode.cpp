// CPU prefill/decode speed and peak memory on a random-weight model (default: the 0.5b preset in bf16).
//   bench_cpu_decode [--model DIR] [--prompt N] [--gen N] [--threads N] [--check]
// Without --model it writes the 0.5b preset to $TMPDIR/tailor-bench-0.5b-bf16 (once). --check exits 1 when
// peak RSS exceeds 1.25 x the weights' bytes (the "no f32 copy of the model" guarantee; run as a CTest test).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/mmap.h"
#include "core/thread_pool.h"
#include "engine/generate.h"
#include "engine/load.h"
#include "model/gen_model.h"

using namespace tailor;

int main(int argc, char** argv) {
  std::string model;
  int prompt = 64, gen = 32, threads = 0;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model")
      model = next();
    else if (a == "--prompt")
      prompt = std::atoi(next().c_str());
    else if (a == "--gen")
      gen = std::atoi(next().c_str());
    else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--check")
      check = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_cpu_decode [--model DIR] [--prompt N] [--gen N] [--threads N] [--check]\n");
      return 2;
    }
  }
  if (threads > 0) ThreadPool::set_global_threads(threads);
  if (model.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    model = std::string(tmp ? tmp : "/tmp") + "/tailor-bench-0.5b-bf16";
    if (!file_exists(model + "/config.json")) {
      GenModelOptions o;
      o.arch = Arch::qwen2, o.preset = "0.5b", o.dtype = DType::bf16, o.out_dir = model, o.quiet = true;
      o.tokenizer_dir = "-";  // ids only: no tokenizer needed for a speed run
      if (Status st = generate_model(o); !st.ok()) {
        std::fprintf(stderr, "bench: %s\n", st.message().c_str());
        return 1;
      }
    }
  }
  LoadOptions lo;
  lo.runner.n_ctx = prompt + gen + 8;
  lo.progress = false;
  {
    auto spec = load_model_spec(model);
    if (!spec.ok()) {
      std::fprintf(stderr, "bench: %s\n", spec.status().message().c_str());
      return 1;
    }
    lo.runner.weight_dtype = spec->weights->find("model.embed_tokens.weight")->dtype;
  }
  auto m = load_model(model, lo);
  if (!m.ok()) {
    std::fprintf(stderr, "bench: %s\n", m.status().message().c_str());
    return 1;
  }
  const uint64_t wbytes = m->spec->weight_bytes();
  std::vector<int32_t> ids(static_cast<size_t>(prompt));
  for (int i = 0; i < prompt; ++i) ids[size_t(i)] = (i * 7919 + 13) % 32000;
  GenerateOptions go;
  go.sampling.temperature = 0;
  go.max_new_tokens = gen;
  go.ignore_eos = true;
  auto r = generate(*m->runner, 0, ids, go);
  if (!r.ok()) {
    std::fprintf(stderr, "bench: %s\n", r.status().message().c_str());
    return 1;
  }
  const double rss = double(peak_rss_bytes());
  const double decode_tok_s = double(r->tokens.size()) / (r->decode_ms / 1e3);
  std::printf("model %s\n%s\n", model.c_str(), m->runner->describe().c_str());
  std::printf("prefill: %d tokens, %.1f ms, %.1f tok/s\n", prompt, r->prompt_ms,
              prompt / (r->prompt_ms / 1e3));
  std::printf("decode:  %zu tokens, %.1f ms, %.2f tok/s, %.1f GB/s of weights\n", r->tokens.size(),
              r->decode_ms, decode_tok_s, decode_tok_s * double(wbytes) / 1e9);
  std::printf("memory:  weights %.1f MB, peak RSS %.1f MB (%.2f x weights)\n", double(wbytes) / 1e6,
              rss / 1e6, rss / double(wbytes));
  if (check && rss > 1.25 * double(wbytes)) {
    std::printf("FAIL: peak RSS exceeds 1.25 x the weights' bytes\n");
    return 1;
  }
  return 0;
}
