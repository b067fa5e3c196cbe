// Opening a model for use: spec + weights (mmap, prefaulted with a progress bar) + runner + tokenizer.
#pragma once

#include <memory>
#include <string>

#include "model/runner.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

struct LoadOptions {
  RunnerOptions runner;
  std::string device = "cpu";   // cpu | cuda
  bool progress = true;         // progress bar on stderr for models over 256 MB
  bool need_tokenizer = false;  // fail when the folder has no tokenizer.json
};

struct LoadedModel {
  std::shared_ptr<const ModelSpec> spec;
  std::unique_ptr<Runner> runner;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none (ids-only use)
  std::vector<int32_t> stop_ids;         // eos ids from generation_config.json / config.json / tokenizer
};

Result<LoadedModel> load_model(const std::string& dir, const LoadOptions& opt);

// Peak resident set size of this process in bytes (VmHWM).
uint64_t peak_rss_bytes();

}  // namespace tailor
