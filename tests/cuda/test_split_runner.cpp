// The GPU/CPU split (model/split_runner.h): the first N layers on a CUDA stack runner, the rest, the
// embedding and the head on the CPU. Checked against the CPU runner over the whole model within the
// CUDA-vs-CPU bounds of test_cuda_runner.cpp (f32 1e-4, bf16 3e-2) for N = 1, L/2 and L-1 over prefill +
// 16 decode steps of 2 slots (the decode graph of the partial stack), a prefill longer than one chunk, HF's
// greedy tokens on the golden fixtures, VRAM holding only the GPU layers, and load_model --gpu-layers.
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "backend/cuda/cuda_runner.h"
#include "cuda_test_util.h"
#include "engine/load.h"
#include "io/safetensors.h"
#include "model/gen_model.h"
#include "model/runner.h"
#include "model/split_runner.h"

using namespace tailor;
using namespace tailor::cuda_test;
namespace fs = std::filesystem;

namespace {

constexpr int kLayers = 4;

std::string gen_dir(Arch arch, DType dt) {
  return (fs::temp_directory_path() /
          cat("tailor_cuda_split_", ::getpid(), "_", arch_hf_name(arch), "_", dtype_name(dt)))
      .string();
}

// A tiny random model of `arch` with kLayers layers, stored in `dt`.
std::shared_ptr<const ModelSpec> gen(Arch arch, DType dt) {
  GenModelOptions o;
  o.arch = arch, o.preset = "tiny", o.n_layer = kLayers, o.dtype = dt, o.quiet = true, o.tokenizer_dir = "-";
  o.out_dir = gen_dir(arch, dt);
  const Status st = generate_model(o);
  EXPECT_TRUE(st.ok()) << st.message();
  auto spec = load_model_spec(o.out_dir);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? std::make_shared<const ModelSpec>(std::move(spec).value()) : nullptr;
}

// CUDA layers [0, n) + CPU layers [n, L) with the embedding and head. GPU: weights and KV cache in `dt`;
// CPU: weights in `dt`, KV cache f32 (as the reference).
Result<std::unique_ptr<Runner>> make_split(std::shared_ptr<const ModelSpec> spec, RunnerOptions ro, DType dt,
                                           int n) {
  ro.weight_dtype = dt;
  RunnerOptions g = ro, c = ro;
  g.kv_dtype = dt;
  g.layer_end = n;
  c.kv_dtype = DType::f32;
  c.layer_begin = n;
  TAILOR_ASSIGN_OR_RETURN(auto gpu, make_cuda_runner(spec, g));
  TAILOR_ASSIGN_OR_RETURN(auto cpu, make_cpu_runner(spec, c));
  return make_split_runner(std::move(gpu), "cuda:0", std::move(cpu), "cpu");
}

int32_t argmax_row(const float* row, int n) {
  return int32_t(std::max_element(row, row + n) - row);
}

// Prefill of two slots (all logits for slot 0; slot 0's prompt has `len0` tokens), then 16 decode steps of
// both, tokens picked from the reference's logits so both runners see the same inputs. Every logits row
// within `tol`; the split's forward_argmax agrees with its own logits.
void compare(Runner& ref, Runner& split, double tol, int len0, Rng& rng) {
  const int V = ref.hparams().n_vocab;
  std::vector<int32_t> t0, t1, p0, p1;
  for (int i = 0; i < len0; ++i) t0.push_back(rng.uniform_int(0, V - 1)), p0.push_back(i);
  for (int i = 0; i < 9; ++i) t1.push_back(rng.uniform_int(0, V - 1)), p1.push_back(i);
  const std::vector<SeqBatchEntry> pre = {{0, t0, p0, true}, {1, t1, p1, false}};
  std::vector<float> lr, ls;
  ASSERT_TRUE(ref.forward(pre, lr).ok());
  const Status st = split.forward(pre, ls);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(lr.size(), ls.size());
  const size_t rows = lr.size() / size_t(V);
  ASSERT_EQ(rows, size_t(len0 + 1));
  for (size_t r = 0; r < rows; ++r)
    EXPECT_LE(rel_err(&ls[r * V], &lr[r * V], size_t(V)), tol) << "prefill row " << r;
  int32_t next[2] = {argmax_row(&lr[(rows - 2) * V], V), argmax_row(&lr[(rows - 1) * V], V)};
  int32_t pos[2] = {int32_t(len0), 9};
  for (int step = 0; step < 16; ++step) {
    const std::vector<SeqBatchEntry> d = {{0, {&next[0], 1}, {&pos[0], 1}, false},
                                          {1, {&next[1], 1}, {&pos[1], 1}, false}};
    ASSERT_TRUE(ref.forward(d, lr).ok());
    const Status ds = split.forward(d, ls);
    ASSERT_TRUE(ds.ok()) << ds.message();
    ASSERT_EQ(ls.size(), 2 * size_t(V));
    for (int s = 0; s < 2; ++s)
      EXPECT_LE(rel_err(&ls[size_t(s) * V], &lr[size_t(s) * V], size_t(V)), tol)
          << "step " << step << " slot " << s;
    // Rewriting the same token at the same position is idempotent, so the step can be replayed.
    std::vector<int32_t> ids;
    ASSERT_TRUE(split.forward_argmax(d, ids).ok());
    ASSERT_EQ(ids.size(), 2u);
    for (int s = 0; s < 2; ++s) EXPECT_EQ(ids[size_t(s)], argmax_row(&ls[size_t(s) * V], V)) << "slot " << s;
    for (int s = 0; s < 2; ++s) next[s] = argmax_row(&lr[size_t(s) * V], V), ++pos[s];
  }
}

struct SplitCase {
  Arch arch;
  DType dt;
};

class SplitVsCpu : public ::testing::TestWithParam<SplitCase> {};

TEST_P(SplitVsCpu, SameLogitsForEverySplitPoint) {
  TAILOR_REQUIRE_GPU();
  const SplitCase& c = GetParam();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  auto spec = gen(c.arch, c.dt == DType::f32 ? DType::f32 : DType::bf16);
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 64, ro.n_slots = 2, ro.weight_dtype = c.dt, ro.kv_dtype = DType::f32;
  const double tol = c.dt == DType::f32 ? 1e-4 : 3e-2;
  for (int n : {1, kLayers / 2, kLayers - 1}) {
    SCOPED_TRACE(cat("N = ", n));
    auto ref = make_cpu_runner(spec, ro);
    ASSERT_TRUE(ref.ok()) << ref.status().message();
    auto split = make_split(spec, ro, c.dt, n);
    ASSERT_TRUE(split.ok()) << split.status().message();
    const std::string d = (*split)->describe();
    EXPECT_EQ(d.rfind(cat("split: ", n, "/", kLayers, " layers on cuda:0 (cuda: "), 0), 0u) << d;
    EXPECT_NE(d.find(cat("), ", kLayers - n, " on cpu (cpu: ")), std::string::npos) << d;
    compare(**ref, **split, tol, 13, rng);
  }
  fs::remove_all(spec->dir);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, SplitVsCpu,
    ::testing::Values(SplitCase{Arch::qwen2, DType::f32}, SplitCase{Arch::qwen2, DType::bf16},
                      SplitCase{Arch::qwen3, DType::f32}, SplitCase{Arch::qwen3, DType::bf16},
                      SplitCase{Arch::llama, DType::f32}, SplitCase{Arch::llama, DType::bf16},
                      SplitCase{Arch::granite, DType::f32}, SplitCase{Arch::granite, DType::bf16},
                      SplitCase{Arch::mistral, DType::f32}, SplitCase{Arch::mistral, DType::bf16}),
    [](const auto& info) { return cat(arch_hf_name(info.param.arch), "_", dtype_name(info.param.dt)); });

// A prefill longer than the CUDA runner's 512-token chunk: the residual stream goes up and comes back per
// chunk, at the right rows.
TEST(SplitRunnerCuda, PrefillLongerThanOneChunk) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  auto spec = gen(Arch::qwen3, DType::f32);
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 640, ro.n_slots = 2, ro.weight_dtype = DType::f32, ro.kv_dtype = DType::f32;
  auto ref = make_cpu_runner(spec, ro);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto split = make_split(spec, ro, DType::f32, kLayers / 2);
  ASSERT_TRUE(split.ok()) << split.status().message();
  compare(**ref, **split, 1e-4, 530, rng);
  fs::remove_all(spec->dir);
}

// The GPU part of a split holds its layers only: no embedding or lm_head in VRAM, decode reads only its
// layers; and it refuses forward() (it has no head) with a message naming forward_layers.
TEST(SplitRunnerCuda, GpuPartHoldsItsLayersOnly) {
  TAILOR_REQUIRE_GPU();
  auto spec = gen(Arch::llama, DType::bf16);  // untied: embedding and lm_head are two [V, D] tables
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 64, ro.weight_dtype = DType::bf16, ro.kv_dtype = DType::bf16;
  auto full = make_cuda_runner(spec, ro);
  ASSERT_TRUE(full.ok()) << full.status().message();
  ro.layer_end = 1;
  auto part = make_cuda_runner(spec, ro);
  ASSERT_TRUE(part.ok()) << part.status().message();
  const CudaRunnerStats *fs_ = cuda_runner_stats(**full), *ps = cuda_runner_stats(**part);
  ASSERT_TRUE(fs_ && ps);
  const HParams& hp = spec->hp;
  const uint64_t table = uint64_t(hp.n_vocab) * uint64_t(hp.n_embd) * 2;  // one bf16 [V, D] table
  EXPECT_LT(ps->weight_bytes, table) << "the embedding or lm_head was uploaded";
  EXPECT_GE(fs_->weight_bytes, 2 * table);
  // One layer of four: a quarter of the layers' bytes, within the arena's 256-byte rounding.
  EXPECT_LE(ps->weight_bytes, (fs_->weight_bytes - 2 * table) / kLayers + 64 * 256);
  EXPECT_EQ(ps->kv_bytes * kLayers, fs_->kv_bytes);
  EXPECT_LT(ps->decode_read_bytes_per_token, fs_->decode_read_bytes_per_token / kLayers);

  std::vector<float> logits;
  const int32_t tok = 1, p0 = 0;
  const SeqBatchEntry e{0, {&tok, 1}, {&p0, 1}, false};
  Status st = (*part)->forward({&e, 1}, logits);
  EXPECT_EQ(st.code(), ErrorCode::unsupported);
  EXPECT_NE(st.message().find("forward_layers"), std::string::npos) << st.message();
  std::vector<float> x(size_t(hp.n_embd), 0.5f);
  st = (*full)->forward_layers({&e, 1}, x);
  EXPECT_EQ(st.code(), ErrorCode::unsupported);
  st = (*part)->forward_layers({&e, 1}, x);
  EXPECT_TRUE(st.ok()) << st.message();
  x.resize(3);
  EXPECT_EQ((*part)->forward_layers({&e, 1}, x).code(), ErrorCode::invalid_argument);
  ro.layer_begin = 1, ro.layer_end = 2;
  auto middle = make_cuda_runner(spec, ro);
  ASSERT_FALSE(middle.ok());
  EXPECT_NE(middle.status().message().find("starts at 0"), std::string::npos) << middle.status().message();
  fs::remove_all(spec->dir);
}

// HF golden fixtures (2 layers: N = 1) through the split: free-running greedy decode reproduces HF's 32
// tokens, as the CPU runner does.
class SplitGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(SplitGolden, GreedyTokensMatchHF) {
  TAILOR_REQUIRE_GPU();
  const std::string dir = std::string(TAILOR_SOURCE_DIR) + "/tests/data/golden/" + GetParam() + "/f32";
  auto spec_r = load_model_spec(dir);
  ASSERT_TRUE(spec_r.ok()) << spec_r.status().message();
  auto spec = std::make_shared<const ModelSpec>(std::move(spec_r).value());
  auto ref = SafeTensorsArchive::open(dir + "/golden.safetensors");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto ids_of = [&](const char* n) {
    const SafeTensor* t = ref->find(n);
    const int32_t* p = reinterpret_cast<const int32_t*>(t->data);
    return std::vector<int32_t>(p, p + t->shape.numel());
  };
  const std::vector<int32_t> prompt = ids_of("prompt_ids"), want = ids_of("tokens");
  RunnerOptions ro;
  ro.n_ctx = 64, ro.weight_dtype = DType::f32, ro.kv_dtype = DType::f32;
  auto cpu = make_cpu_runner(spec, ro);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  const int L = spec->hp.n_layer;
  for (int n = 1; n < L; ++n) {
    SCOPED_TRACE(cat("N = ", n));
    auto split = make_split(spec, ro, DType::f32, n);
    ASSERT_TRUE(split.ok()) << split.status().message();
    auto greedy = [&](Runner& r) {
      std::vector<int32_t> pos, ids, got;
      for (int i = 0; i < int(prompt.size()); ++i) pos.push_back(i);
      const SeqBatchEntry e{0, prompt, pos, false};
      EXPECT_TRUE(r.forward_argmax({&e, 1}, ids).ok());
      for (size_t s = 0; s < want.size() && ids.size() == 1; ++s) {
        got.push_back(ids[0]);
        const int32_t p = int32_t(prompt.size() + s);
        const SeqBatchEntry d{0, {&got.back(), 1}, {&p, 1}, false};
        EXPECT_TRUE(r.forward_argmax({&d, 1}, ids).ok());
      }
      return got;
    };
    EXPECT_EQ(greedy(**split), want);
    if (n == 1) {
      EXPECT_EQ(greedy(**cpu), want);
    }
  }
}

const char* kGoldenArchs[] = {"qwen2", "qwen3", "llama", "granite", "mistral"};
INSTANTIATE_TEST_SUITE_P(Archs, SplitGolden, ::testing::ValuesIn(kGoldenArchs));

// load_model with --gpu-layers N < n_layer builds the split, the plan and describe() say so, VRAM follows the
// plan (layers only), and the logits match the CPU runner.
TEST(SplitLoad, GpuLayersMakesASplit) {
  TAILOR_REQUIRE_GPU();
  auto spec = gen(Arch::qwen2, DType::bf16);
  ASSERT_TRUE(spec);
  LoadOptions lo;
  lo.runner.n_ctx = 64;
  lo.runner.n_slots = 2;
  lo.device = "cuda";
  lo.progress = false;
  lo.verbose = false;
  lo.gpu_layers = 3;
  auto m = load_model(spec->dir, lo);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->plan.n_gpu_layers, 3);
  EXPECT_TRUE(m->plan.use_gpu);
  EXPECT_FALSE(m->plan.embd_on_gpu);
  const std::string summary = plan_summary_line(m->plan);
  EXPECT_NE(summary.find(cat("3/", kLayers, " layers on GPU")), std::string::npos) << summary;
  const std::string d = m->runner->describe();
  EXPECT_EQ(d.rfind(cat("split: 3/", kLayers, " layers on cuda:0 (cuda: "), 0), 0u) << d;
  EXPECT_NE(d.find("), 1 on cpu (cpu: "), std::string::npos) << d;
  const Runner* gpu = split_front(*m->runner);
  ASSERT_NE(gpu, nullptr);
  const CudaRunnerStats* st = cuda_runner_stats(*gpu);
  ASSERT_NE(st, nullptr);
  EXPECT_LE(double(st->weight_bytes), 1.1 * double(m->plan.mem.gpu_weights) + 65536.0)
      << "VRAM weights beyond the plan's " << m->plan.mem.gpu_weights;
  EXPECT_LT(st->weight_bytes, uint64_t(spec->hp.n_vocab) * uint64_t(spec->hp.n_embd) * 2)
      << "the embedding went to the GPU; the plan keeps it on the host";
  EXPECT_EQ(m->runner->options().n_slots, 2);

  RunnerOptions ro;
  ro.n_ctx = 64, ro.n_slots = 2, ro.weight_dtype = gpu->options().weight_dtype, ro.kv_dtype = DType::f32;
  auto ref = make_cpu_runner(m->spec, ro);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  compare(**ref, *m->runner, 3e-2, 11, rng);

  // Every layer pinned to the GPU: the CUDA runner alone. None: the CPU runner.
  lo.gpu_layers = kLayers;
  auto all = load_model(spec->dir, lo);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->runner->describe().rfind("cuda: ", 0), 0u) << all->runner->describe();
  lo.gpu_layers = 0;
  auto none = load_model(spec->dir, lo);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->runner->describe().rfind("cpu: ", 0), 0u) << none->runner->describe();
  fs::remove_all(spec->dir);
}

}  // namespace
