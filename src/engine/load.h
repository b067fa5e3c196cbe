// Opening a model for use: spec + weights (mmap, prefaulted with a progress bar) + runner + tokenizer.
#pragma once

#include <memory>
#include <string>

#include <optional>

#include "model/runner.h"
#include "plan/plan.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

struct LoadOptions {
  RunnerOptions runner;           // n_ctx and n_slots are taken as given; dtypes come from the Plan
  std::string device = "auto";    // auto (the Plan decides) | cpu | cuda
  std::optional<DType> dtype;     // --dtype: overrides the Plan's storage dtype for matrices
  std::optional<DType> kv_dtype;  // --kv-dtype: overrides the Plan's CPU KV-cache dtype
  std::optional<int> gpu_layers;  // --gpu-layers: pins the decoder layers on the GPU (a split when < n_layer)
  bool progress = true;           // progress bar on stderr for models over 256 MB
  bool need_tokenizer = false;    // fail when the folder has no tokenizer.json
  bool verbose = true;            // print the plan's summary line and warnings on stderr
};

struct LoadedModel {
  std::shared_ptr<const ModelSpec> spec;
  Plan plan;
  std::unique_ptr<Runner> runner;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none (ids-only use)
  std::vector<int32_t> stop_ids;         // eos ids from generation_config.json / config.json / tokenizer
};

// Loads by the Plan: probes the machine, plans precision and memory (refusing, with what would fit, when the
// model does not fit), prints the plan's summary and warnings, then builds the runner the Plan chose: CUDA,
// CPU, or a split (the first n_gpu_layers on the GPU, the rest on the CPU; model/split_runner.h).
Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& opt);

// Peak resident set size of this process in bytes (VmHWM).
uint64_t peak_rss_bytes();

}  // namespace tailor
