// The whole CUDA runner against the CPU runner on small random models of every supported architecture
// (prefill of several sequences in one call, batched decode through the captured graphs, GEMV and GEMM
// paths), against the HF golden fixtures, and its error messages.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "backend/cuda/cuda_runner.h"
#include "core/json.h"
#include "core/mmap.h"
#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "model/model_spec.h"
#include "model/runner.h"
#include "sample/device_sampling.h"

using namespace tailor;
using namespace tailor::cuda_test;

namespace {

struct ModelShape {
  Arch arch;
  int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
  bool tie;
};

std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / cat("tailor_cuda_", getpid(), "_", name);
  std::filesystem::create_directories(p);
  return p.string();
}

// Writes config.json + model.safetensors with random weights in `dt` and loads it back.
std::shared_ptr<const ModelSpec> write_model(const std::string& dir, const ModelShape& s, DType dt,
                                             Rng& rng) {
  Json cfg = {{"architectures", {arch_hf_name(s.arch)}},
              {"vocab_size", s.n_vocab},
              {"hidden_size", s.n_embd},
              {"num_hidden_layers", s.n_layer},
              {"num_attention_heads", s.n_head},
              {"num_key_value_heads", s.n_head_kv},
              {"head_dim", s.head_dim},
              {"intermediate_size", s.n_ff},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"max_position_embeddings", 4096},
              {"tie_word_embeddings", s.tie},
              {"torch_dtype", dt == DType::f32 ? "float32" : "bfloat16"}};
  if (s.arch == Arch::granite) {
    cfg["embedding_multiplier"] = 2.0;
    cfg["residual_multiplier"] = 0.5;
    cfg["attention_multiplier"] = 0.1;
    cfg["logits_scaling"] = 4.0;
  }
  if (s.arch == Arch::llama) {
    cfg["attention_bias"] = true;  // also o_proj bias: exercises the GEMM bias path
    cfg["mlp_bias"] = true;
    cfg["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 64}};
  }
  const std::string text = cfg.dump(2);
  EXPECT_TRUE(write_file(dir + "/config.json", text).ok());
  auto hp = parse_hf_config(text, "config.json");
  EXPECT_TRUE(hp.ok()) << hp.status().message();
  std::vector<std::vector<uint8_t>> data;
  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& t : expected_tensors(*hp)) {
    const size_t n = size_t(t.shape.numel());
    const bool is_norm = t.name.find("norm") != std::string::npos;
    auto v = rng.normal(n, is_norm ? 0.1f : 0.08f);
    if (is_norm)
      for (float& x : v) x += 1.0f;
    data.push_back(to_dtype(v, dt));
    tensors.push_back({t.name, dt, t.shape, data.back().data()});
  }
  EXPECT_TRUE(write_safetensors(dir + "/model.safetensors", tensors).ok());
  auto spec = load_model_spec(dir);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return std::make_shared<const ModelSpec>(std::move(spec).value());
}

std::vector<int32_t> iota_from(int32_t p0, int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = p0 + i;
  return v;
}

int32_t argmax_row(const float* row, int n) {
  return int32_t(std::max_element(row, row + n) - row);
}

// Sampling parameters for sequence s at `step`: greedy, masked (even ids only), top-k, top-p and min-p mixed.
std::vector<DeviceSampling> mixed_sampling(int n_seqs, int step, const std::vector<uint32_t>& even_ids) {
  std::vector<DeviceSampling> ps(static_cast<size_t>(n_seqs));
  for (int s = 0; s < n_seqs; ++s) {
    DeviceSampling& d = ps[size_t(s)];
    d.temperature = s % 3 == 0 ? 0.0f : 0.9f;
    d.top_k = s % 2 ? 20 : 0;
    d.top_p = s % 3 == 1 ? 0.9f : 1.0f;
    d.min_p = s % 4 == 3 ? 0.05f : 0.0f;
    d.seed = uint64_t(1000 + s);
    d.step = uint64_t(step);
    if (s % 2) d.mask = even_ids;
  }
  return ps;
}

// forward_sample's ids equal sample_row() on the logits forward() gave for the same inputs (rows[i]: entry
// i's last-token row in `logits`).
void expect_sampled_like_cpu(const std::vector<int32_t>& ids, const std::vector<DeviceSampling>& ps,
                             const std::vector<float>& logits, const std::vector<size_t>& rows, int V) {
  ASSERT_EQ(ids.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<float> row(logits.begin() + long(rows[i] * size_t(V)),
                           logits.begin() + long((rows[i] + 1) * size_t(V)));
    EXPECT_EQ(ids[i], sample_row(ps[i], row)) << "entry " << i;
    if (!ps[i].mask.empty()) {
      EXPECT_EQ(ids[i] % 2, 0) << "entry " << i << ": the mask allows even ids only";
    }
  }
}

// Runs the same schedule on both runners and compares every logits row.
void compare_runners(Runner& cpu, Runner& gpu, Rng& rng, double tol, int n_seqs) {
  const int V = cpu.hparams().n_vocab;
  std::vector<std::vector<int32_t>> toks(static_cast<size_t>(n_seqs)), pos(static_cast<size_t>(n_seqs));
  const int lens[] = {13, 70, 1, 5, 2, 9, 3, 4, 6, 7, 8, 11};
  std::vector<SeqBatchEntry> batch;
  for (int s = 0; s < n_seqs; ++s) {
    const int n = lens[s % 12];
    for (int i = 0; i < n; ++i) toks[size_t(s)].push_back(rng.uniform_int(0, V - 1));
    pos[size_t(s)] = iota_from(0, n);
    batch.push_back({s, toks[size_t(s)], pos[size_t(s)], s == 0});
  }
  std::vector<float> lc, lg;
  ASSERT_TRUE(cpu.forward(batch, lc).ok());
  const Status st = gpu.forward(batch, lg);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(lc.size(), lg.size());
  for (size_t r = 0; r < lc.size() / size_t(V); ++r)
    EXPECT_LE(rel_err(&lg[r * V], &lc[r * V], size_t(V)), tol) << "prefill row " << r;
  // The prefill again through forward_sample (the same KV entries are rewritten): the eager path's sampler.
  const std::vector<uint32_t> even_ids((size_t(V) + 31) / 32, 0x55555555u);
  {
    std::vector<size_t> last_rows;
    size_t r = 0;
    for (int s = 0; s < n_seqs; ++s) {
      r += s == 0 ? toks[0].size() : 1;
      last_rows.push_back(r - 1);
    }
    const auto ps = mixed_sampling(n_seqs, 0, even_ids);
    std::vector<int32_t> ids;
    const Status ss = gpu.forward_sample(batch, ps, ids);
    ASSERT_TRUE(ss.ok()) << ss.message();
    expect_sampled_like_cpu(ids, ps, lg, last_rows, V);
  }
  // Decode: every sequence one token per step, tokens chosen from the CPU logits (same inputs on both sides).
  std::vector<int32_t> next(static_cast<size_t>(n_seqs)), p(static_cast<size_t>(n_seqs));
  size_t row = 0;
  for (int s = 0; s < n_seqs; ++s) {
    row += s == 0 ? toks[0].size() : 1;
    next[size_t(s)] = argmax_row(&lc[(row - 1) * V], V);
    p[size_t(s)] = int32_t(toks[size_t(s)].size());
  }
  for (int step = 0; step < 6; ++step) {
    std::vector<SeqBatchEntry> d;
    for (int s = 0; s < n_seqs; ++s) d.push_back({s, {&next[size_t(s)], 1}, {&p[size_t(s)], 1}, false});
    ASSERT_TRUE(cpu.forward(d, lc).ok());
    const Status gs = gpu.forward(d, lg);
    ASSERT_TRUE(gs.ok()) << gs.message();
    ASSERT_EQ(lc.size(), lg.size());
    for (int s = 0; s < n_seqs; ++s)
      EXPECT_LE(rel_err(&lg[size_t(s) * V], &lc[size_t(s) * V], size_t(V)), tol)
          << "step " << step << " seq " << s;
    // The device argmax agrees with the logits the same graph produced.
    std::vector<int32_t> ids;
    // Rewriting the same token at the same position is idempotent, so the step can be replayed.
    ASSERT_TRUE(gpu.forward_argmax(d, ids).ok());
    ASSERT_EQ(ids.size(), size_t(n_seqs));
    for (int s = 0; s < n_seqs; ++s)
      EXPECT_EQ(ids[size_t(s)], argmax_row(&lg[size_t(s) * V], V)) << "seq " << s;
    // And the device sampler (the decode graph that ends in it) draws what sample_row draws from them.
    const auto ps = mixed_sampling(n_seqs, step + 1, even_ids);
    const Status ss = gpu.forward_sample(d, ps, ids);
    ASSERT_TRUE(ss.ok()) << ss.message();
    std::vector<size_t> rows(static_cast<size_t>(n_seqs));
    std::iota(rows.begin(), rows.end(), size_t(0));
    expect_sampled_like_cpu(ids, ps, lg, rows, V);
    for (int s = 0; s < n_seqs; ++s) {
      next[size_t(s)] = argmax_row(&lc[size_t(s) * V], V);
      ++p[size_t(s)];
    }
  }
}

struct RunnerCase {
  ModelShape shape;
  DType dt;  // weights and KV cache on the GPU (the CPU runner keeps an f32 cache)
  int n_seqs;
};

class CudaRunnerVsCpu : public ::testing::TestWithParam<RunnerCase> {};

TEST_P(CudaRunnerVsCpu, SameLogits) {
  TAILOR_REQUIRE_GPU();
  const RunnerCase& c = GetParam();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const std::string dir =
      temp_dir(cat(arch_hf_name(c.shape.arch), "_", c.shape.head_dim, "_", dtype_name(c.dt)));
  auto spec = write_model(dir, c.shape, c.dt == DType::f32 ? DType::f32 : DType::bf16, rng);
  RunnerOptions ro;
  ro.n_ctx = 128;
  ro.n_slots = c.n_seqs;
  ro.weight_dtype = c.dt;
  ro.kv_dtype = DType::f32;
  auto cpu = make_cpu_runner(spec, ro);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  ro.kv_dtype = c.dt;
  auto gpu = make_cuda_runner(spec, ro);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  ASSERT_NE(cuda_runner_stats(**gpu), nullptr);
  EXPECT_TRUE((*gpu)->samples_on_device());
  compare_runners(**cpu, **gpu, rng, c.dt == DType::f32 ? 1e-4 : 3e-2, c.n_seqs);
  std::filesystem::remove_all(dir);
}

const ModelShape kTinyQwen2{Arch::qwen2, 64, 2, 4, 2, 16, 192, 512, true};
const ModelShape kQwen2Hd64{Arch::qwen2, 256, 2, 8, 2, 64, 384, 1000, false};
const ModelShape kQwen3Hd128{Arch::qwen3, 256, 2, 4, 1, 128, 320, 777, false};
const ModelShape kLlamaHd64{Arch::llama, 128, 2, 4, 2, 64, 256, 600, false};
const ModelShape kGraniteHd32{Arch::granite, 128, 2, 4, 4, 32, 200, 300, true};
const ModelShape kMistralHd80{Arch::mistral, 160, 2, 2, 1, 80, 224, 500, false};

INSTANTIATE_TEST_SUITE_P(
    Archs, CudaRunnerVsCpu,
    ::testing::Values(RunnerCase{kTinyQwen2, DType::f32, 3}, RunnerCase{kTinyQwen2, DType::bf16, 3},
                      RunnerCase{kQwen2Hd64, DType::f32, 3}, RunnerCase{kQwen2Hd64, DType::bf16, 3},
                      RunnerCase{kQwen2Hd64, DType::f16, 2}, RunnerCase{kQwen3Hd128, DType::f32, 2},
                      RunnerCase{kQwen3Hd128, DType::bf16, 3}, RunnerCase{kLlamaHd64, DType::f32, 3},
                      RunnerCase{kLlamaHd64, DType::bf16, 2}, RunnerCase{kGraniteHd32, DType::f32, 2},
                      RunnerCase{kGraniteHd32, DType::bf16, 3}, RunnerCase{kMistralHd80, DType::f32, 2},
                      RunnerCase{kMistralHd80, DType::bf16, 2},
                      // Decode batches above the GEMV limit go through cuBLASLt inside the graph.
                      RunnerCase{kQwen2Hd64, DType::f32, 10}, RunnerCase{kQwen2Hd64, DType::bf16, 12}),
    [](const auto& info) {
      const RunnerCase& c = info.param;
      return cat(arch_hf_name(c.shape.arch), "_hd", c.shape.head_dim, "_", dtype_name(c.dt), "_b", c.n_seqs);
    });

// ---- HF golden fixtures (tests/data/golden, made by tools/make_golden.py)
// ------------------------------------

const char* kGoldenArchs[] = {"qwen2", "qwen3", "llama", "granite", "mistral"};

struct Golden {
  std::shared_ptr<const ModelSpec> spec;
  SafeTensorsArchive ref;
  std::vector<int32_t> prompt, tokens;
  const float* prompt_logits = nullptr;
  const float* step_logits = nullptr;
};

std::unique_ptr<Golden> load_golden(const std::string& arch, const std::string& dt) {
  const std::string dir = std::string(TAILOR_SOURCE_DIR) + "/tests/data/golden/" + arch + "/" + dt;
  auto spec = load_model_spec(dir);
  if (!spec.ok()) {
    ADD_FAILURE() << spec.status().message();
    return nullptr;
  }
  auto ref = SafeTensorsArchive::open(dir + "/golden.safetensors");
  if (!ref.ok()) {
    ADD_FAILURE() << ref.status().message();
    return nullptr;
  }
  auto g = std::make_unique<Golden>(
      Golden{std::make_shared<const ModelSpec>(std::move(spec).value()), std::move(ref).value(), {}, {}});
  auto ids = [&](const char* n) {
    const SafeTensor* t = g->ref.find(n);
    const int32_t* p = reinterpret_cast<const int32_t*>(t->data);
    return std::vector<int32_t>(p, p + t->shape.numel());
  };
  g->prompt = ids("prompt_ids");
  g->tokens = ids("tokens");
  g->prompt_logits = reinterpret_cast<const float*>(g->ref.find("prompt_logits")->data);
  g->step_logits = reinterpret_cast<const float*>(g->ref.find("step_logits")->data);
  return g;
}

class CudaGolden : public ::testing::TestWithParam<const char*> {};

// Free-running greedy decode in f32 must reproduce HF's 32 tokens exactly; the device argmax is used.
TEST_P(CudaGolden, GreedyTokensMatchHF) {
  TAILOR_REQUIRE_GPU();
  auto g = load_golden(GetParam(), "f32");
  ASSERT_TRUE(g);
  RunnerOptions ro;
  ro.n_ctx = 64;
  ro.weight_dtype = DType::f32;
  ro.kv_dtype = DType::f32;
  auto runner = make_cuda_runner(g->spec, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  const auto pos = iota_from(0, int(g->prompt.size()));
  SeqBatchEntry e{0, g->prompt, pos, false};
  std::vector<int32_t> ids;
  ASSERT_TRUE((*runner)->forward_argmax({&e, 1}, ids).ok());
  std::vector<int32_t> got;
  for (size_t s = 0; s < g->tokens.size(); ++s) {
    got.push_back(ids[0]);
    const int32_t p = int32_t(g->prompt.size() + s);
    SeqBatchEntry d{0, {&got.back(), 1}, {&p, 1}, false};
    ASSERT_TRUE((*runner)->forward_argmax({&d, 1}, ids).ok());
  }
  EXPECT_EQ(got, g->tokens);
}

// Teacher-forced logits within the golden bounds (f32 1e-4, bf16 2e-2), with bf16 weights and cache for bf16.
TEST_P(CudaGolden, TeacherForcedLogitsMatchHF) {
  TAILOR_REQUIRE_GPU();
  for (const char* dt : {"f32", "bf16"}) {
    SCOPED_TRACE(dt);
    auto g = load_golden(GetParam(), dt);
    ASSERT_TRUE(g);
    const bool f32 = std::string(dt) == "f32";
    const double tol = f32 ? 1e-4 : 2e-2;
    const int V = g->spec->hp.n_vocab;
    RunnerOptions ro;
    ro.n_ctx = 64;
    ro.weight_dtype = f32 ? DType::f32 : DType::bf16;
    ro.kv_dtype = ro.weight_dtype;
    auto runner = make_cuda_runner(g->spec, ro);
    ASSERT_TRUE(runner.ok()) << runner.status().message();
    const int P = int(g->prompt.size());
    const auto pos = iota_from(0, P);
    SeqBatchEntry e{0, g->prompt, pos, true};
    std::vector<float> logits;
    ASSERT_TRUE((*runner)->forward({&e, 1}, logits).ok());
    for (int i = 0; i < P; ++i)
      EXPECT_LE(rel_err(&logits[size_t(i) * V], g->prompt_logits + int64_t(i) * V, size_t(V)), tol)
          << "prompt " << i;
    for (size_t s = 0; s + 1 < g->tokens.size(); ++s) {
      const int32_t p = int32_t(P + s);
      SeqBatchEntry d{0, {&g->tokens[s], 1}, {&p, 1}, false};
      ASSERT_TRUE((*runner)->forward({&d, 1}, logits).ok());
      EXPECT_LE(rel_err(logits.data(), g->step_logits + int64_t(s + 1) * V, size_t(V)), tol)
          << "step " << s + 1;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, CudaGolden, ::testing::ValuesIn(kGoldenArchs));

// ---- errors
// ----------------------------------------------------------------------------------------------------

std::shared_ptr<const ModelSpec> golden_spec() {
  auto spec = load_model_spec(std::string(TAILOR_SOURCE_DIR) + "/tests/data/golden/qwen2/f32");
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return std::make_shared<const ModelSpec>(std::move(spec).value());
}

// Runs everywhere: without a GPU (CI) the factory must refuse with a sentence, not a CUDA error code.
TEST(CudaRunnerErrors, NoDeviceIsAClearMessage) {
  if (gpu_unavailable_reason().empty()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU message";
  auto r = make_cuda_runner(golden_spec(), RunnerOptions{});
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_TRUE(m.find("no CUDA device") != std::string::npos || m.find("driver") != std::string::npos) << m;
  EXPECT_EQ(m.find("cudaError"), std::string::npos) << m;
}

TEST(CudaRunnerErrors, UnsupportedDtype) {
  RunnerOptions ro;
  ro.kv_dtype = DType::i8;
  auto r = make_cuda_runner(golden_spec(), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::unsupported);
  EXPECT_NE(r.status().message().find("KV-cache dtype i8"), std::string::npos) << r.status().message();
}

TEST(CudaRunnerErrors, TooLittleMemory) {
  TAILOR_REQUIRE_GPU();
  RunnerOptions ro;
  ro.n_ctx = 1 << 24;
  ro.n_slots = 4096;
  ro.kv_dtype = DType::f32;
  auto r = make_cuda_runner(golden_spec(), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::out_of_memory);
  EXPECT_NE(r.status().message().find("free"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("--ctx"), std::string::npos) << r.status().message();
}

TEST(CudaRunnerErrors, BadInputsAreRejected) {
  TAILOR_REQUIRE_GPU();
  RunnerOptions ro;
  ro.n_ctx = 16;
  auto r = make_cuda_runner(golden_spec(), ro);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<float> logits;
  const int32_t bad_tok = 1 << 20, tok = 1, p0 = 0, far = 16;
  SeqBatchEntry e1{0, {&bad_tok, 1}, {&p0, 1}, false};
  EXPECT_EQ((*r)->forward({&e1, 1}, logits).code(), ErrorCode::invalid_argument);
  SeqBatchEntry e2{0, {&tok, 1}, {&far, 1}, false};
  EXPECT_EQ((*r)->forward({&e2, 1}, logits).code(), ErrorCode::invalid_argument);
  SeqBatchEntry e3{3, {&tok, 1}, {&p0, 1}, false};
  EXPECT_EQ((*r)->forward({&e3, 1}, logits).code(), ErrorCode::invalid_argument);
  SeqBatchEntry ok{0, {&tok, 1}, {&p0, 1}, false};
  EXPECT_TRUE((*r)->forward({&ok, 1}, logits).ok());
  EXPECT_EQ(logits.size(), size_t((*r)->hparams().n_vocab));
}

}  // namespace
