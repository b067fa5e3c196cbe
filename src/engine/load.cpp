#include "engine/load.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/log.h"
#include "core/mmap.h"

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
  prefault(*m.spec, opt.progress);
  if (opt.device == "cpu") {
    TAILOR_ASSIGN_OR_RETURN(m.runner, make_cpu_runner(m.spec, opt.runner));
  } else if (opt.device == "cuda") {
    return unsupported("--device cuda: this build has no CUDA runner yet; use --device cpu");
  } else {
    return invalid_argument(cat("unknown device '", opt.device, "' (valid: cpu, cuda)"));
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
