// Forward-pass invariants and loader errors that need no reference framework.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "backend/cpu/ops.h"
#include "core/mmap.h"
#include "model/gen_model.h"
#include "model/runner.h"

using namespace tailor;
namespace fs = std::filesystem;

namespace {

std::string tmp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("tailor-test-" + std::to_string(::getpid()) + "-" + name);
  fs::create_directories(p);
  return p.string();
}

std::shared_ptr<const ModelSpec> gen(Arch arch, DType dt, const std::string& name) {
  GenModelOptions o;
  o.arch = arch, o.preset = "tiny", o.dtype = dt, o.out_dir = tmp_dir(name), o.quiet = true,
  o.tokenizer_dir = "-";
  Status st = generate_model(o);
  EXPECT_TRUE(st.ok()) << st.message();
  auto spec = load_model_spec(o.out_dir);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return std::make_shared<const ModelSpec>(std::move(spec).value());
}

double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i)
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / den);
}

}  // namespace

// The SIMD matmul equals a double-precision reference for every weight dtype over odd sizes (tails, partial
// tiles).
TEST(CpuOps, MatmulMatchesReference) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (DType wt : {DType::f32, DType::bf16, DType::f16}) {
    for (auto [m, n, k] : {std::tuple{1, 7, 33}, {3, 5, 16}, {5, 9, 100}, {9, 130, 257}, {1, 1, 1}}) {
      std::vector<float> x(static_cast<size_t>(m * k)), wf(static_cast<size_t>(n * k)),
          bias(static_cast<size_t>(n));
      std::vector<float> y(static_cast<size_t>(m * n), NAN);
      for (auto& v : x) v = nd(rng);
      for (auto& v : wf) v = nd(rng);
      for (auto& v : bias) v = nd(rng);
      std::vector<uint8_t> w(dtype_row_bytes(wt, wf.size()));
      convert_row(wf.data(), DType::f32, w.data(), wt, wf.size());
      cpu::matmul(y.data(), x.data(), w.data(), wt, bias.data(), m, n, k);
      // The kernel's contract: x is used as given, or rounded to bf16 where the CPU computes bf16 natively.
      const bool xr = cpu::matmul_rounds_x_to_bf16(wt);
      std::vector<float> ref(y.size()), ref_f32(y.size());
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = bias[size_t(j)], s32 = s;
          for (int c = 0; c < k; ++c) {
            const float xv = x[size_t(i * k + c)];
            const double wv = load_as_f32(w.data(), wt, size_t(j * k + c));
            s += double(xr ? bf16_to_f32(f32_to_bf16(xv)) : xv) * wv;
            s32 += double(xv) * wv;
          }
          ref[size_t(i * n + j)] = float(s), ref_f32[size_t(i * n + j)] = float(s32);
        }
      EXPECT_LE(rel_err(y.data(), ref.data(), y.size()), 1e-5)
          << dtype_name(wt) << " " << m << "x" << n << "x" << k;
      // And against exact f32 inputs, within the bf16 bound of CONVENTIONS.md.
      EXPECT_LE(rel_err(y.data(), ref_f32.data(), y.size()), 1e-2) << dtype_name(wt);
    }
  }
}

// Every architecture's generated model loads, and a prefill of N tokens gives the same last logits as feeding
// the tokens one at a time through the KV cache.
TEST(Forward, PrefillEqualsIncrementalForEveryArch) {
  for (Arch a : {Arch::llama, Arch::qwen2, Arch::qwen3, Arch::granite, Arch::mistral}) {
    auto spec = gen(a, DType::f32, std::string("inc-") + arch_hf_name(a));
    ASSERT_TRUE(spec);
    RunnerOptions ro;
    ro.n_ctx = 32, ro.weight_dtype = DType::f32;
    auto r = make_cpu_runner(spec, ro);
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<int32_t> toks = {5, 900, 31, 77, 4000, 12};
    std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5};
    std::vector<float> full, step;
    SeqBatchEntry e{0, toks, pos, false};
    ASSERT_TRUE((*r)->forward({&e, 1}, full).ok());
    for (size_t i = 0; i < toks.size(); ++i) {
      SeqBatchEntry d{0, {&toks[i], 1}, {&pos[i], 1}, false};
      ASSERT_TRUE((*r)->forward({&d, 1}, step).ok());
    }
    EXPECT_LE(rel_err(step.data(), full.data(), full.size()), 1e-5) << arch_hf_name(a);
  }
}

// Two sequences in one batched step give the same logits as each run alone (slots are independent).
TEST(Forward, BatchedEqualsSeparate) {
  auto spec = gen(Arch::qwen2, DType::bf16, "batch");
  RunnerOptions ro;
  ro.n_ctx = 32, ro.n_slots = 3, ro.weight_dtype = DType::bf16;
  auto r = make_cpu_runner(spec, ro);
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> a = {1, 2, 3, 4}, b = {9, 8, 7}, pa = {0, 1, 2, 3}, pb = {0, 1, 2};
  std::vector<float> la, lb, lab;
  SeqBatchEntry ea{0, a, pa, false}, eb{1, b, pb, false};
  ASSERT_TRUE((*r)->forward({&ea, 1}, la).ok());
  ASSERT_TRUE((*r)->forward({&eb, 1}, lb).ok());
  SeqBatchEntry both[2] = {{2, a, pa, false}, {1, b, pb, false}};
  ASSERT_TRUE((*r)->forward(both, lab).ok());
  const size_t V = size_t(spec->hp.n_vocab);
  ASSERT_EQ(lab.size(), 2 * V);
  EXPECT_LE(rel_err(lab.data(), la.data(), V), 1e-6);
  EXPECT_LE(rel_err(lab.data() + V, lb.data(), V), 1e-6);
}

// The default forward_sample (the CPU runner's): forward() then sample_row() on each entry's last-token row.
TEST(Forward, DefaultForwardSampleIsForwardThenSampleRow) {
  auto spec = gen(Arch::qwen2, DType::bf16, "fsample");
  RunnerOptions ro;
  ro.n_ctx = 32, ro.n_slots = 2, ro.weight_dtype = DType::bf16;
  auto r = make_cpu_runner(spec, ro);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->samples_on_device());
  const size_t V = size_t(spec->hp.n_vocab);
  std::vector<int32_t> a = {1, 2, 3, 4}, b = {9, 8, 7}, pa = {0, 1, 2, 3}, pb = {0, 1, 2};
  SeqBatchEntry both[2] = {{0, a, pa, true}, {1, b, pb, false}};  // all_logits is ignored by forward_sample
  std::vector<float> logits;
  ASSERT_TRUE((*r)->forward(both, logits).ok());
  ASSERT_EQ(logits.size(), 5 * V);
  std::vector<uint32_t> mask((V + 31) / 32, 0xaaaaaaaau);  // odd ids only
  std::vector<DeviceSampling> ps(2);
  std::set<int32_t> drawn;
  for (uint64_t step = 0; step < 20; ++step) {
    ps[0] = DeviceSampling{0.9f, 20, 0.9f, 0.0f, 5, step, {}};
    ps[1] = DeviceSampling{1.2f, 0, 1.0f, 0.01f, 6, step, mask};
    std::vector<int32_t> ids;
    // Running the same tokens at the same positions again rewrites the same KV entries: the same logits.
    ASSERT_TRUE((*r)->forward_sample(both, ps, ids).ok());
    ASSERT_EQ(ids.size(), 2u);
    std::vector<float> ra(logits.begin() + 3 * long(V), logits.begin() + 4 * long(V)),
        rb(logits.begin() + 4 * long(V), logits.end());
    EXPECT_EQ(ids[0], sample_row(ps[0], ra)) << "step " << step;
    EXPECT_EQ(ids[1], sample_row(ps[1], rb)) << "step " << step;
    EXPECT_EQ(ids[1] % 2, 1) << "the mask allows odd ids only";
    drawn.insert(ids[1]);
  }
  EXPECT_GT(drawn.size(), 3u);
  std::vector<int32_t> ids;
  Status st = (*r)->forward_sample(both, {ps.data(), 1}, ids);
  EXPECT_EQ(st.code(), ErrorCode::invalid_argument);
  ps[1].temperature = -1.0f;
  st = (*r)->forward_sample(both, ps, ids);
  EXPECT_EQ(st.code(), ErrorCode::invalid_argument);
  EXPECT_NE(st.message().find("temperature"), std::string::npos) << st.message();
}

TEST(Forward, RejectsBadInputs) {
  auto spec = gen(Arch::llama, DType::bf16, "bad");
  RunnerOptions ro;
  ro.n_ctx = 8;
  auto r = make_cpu_runner(spec, ro);
  ASSERT_TRUE(r.ok());
  std::vector<float> l;
  std::vector<int32_t> t = {spec->hp.n_vocab}, p = {0};
  SeqBatchEntry e{0, t, p, false};
  Status st = (*r)->forward({&e, 1}, l);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos) << st.message();
  t = {1}, p = {8};
  e = {0, t, p, false};
  st = (*r)->forward({&e, 1}, l);
  EXPECT_NE(st.message().find("raise --ctx"), std::string::npos) << st.message();
  e = {5, t, p, false};
  EXPECT_FALSE((*r)->forward({&e, 1}, l).ok());
}

TEST(Loader, ClearErrors) {
  const std::string d = tmp_dir("errs");
  auto st = load_model_spec(d + "/nope");
  EXPECT_EQ(st.status().code(), ErrorCode::not_found);
  st = load_model_spec(d);
  EXPECT_NE(st.status().message().find("no config.json"), std::string::npos) << st.status().message();
  ASSERT_TRUE(
      write_file(d + "/config.json", R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 10})").ok());
  st = load_model_spec(d);
  EXPECT_EQ(st.status().code(), ErrorCode::unsupported);
  EXPECT_NE(st.status().message().find("Qwen2ForCausalLM"), std::string::npos) << "lists supported archs";
  ASSERT_TRUE(
      write_file(d + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 10})").ok());
  st = load_model_spec(d);
  EXPECT_NE(st.status().message().find("hidden_size"), std::string::npos) << st.status().message();
  ASSERT_TRUE(write_file(d + "/config.json", "{not json").ok());
  EXPECT_EQ(load_model_spec(d).status().code(), ErrorCode::invalid_argument);

  // A real model folder with one tensor removed: the error names the tensor.
  auto spec = gen(Arch::qwen3, DType::bf16, "missing");
  const std::string md = spec->dir;
  std::vector<TensorToWrite> keep;
  for (const auto& t : spec->weights->tensors())
    if (t.name != "model.layers.1.self_attn.k_norm.weight")
      keep.push_back({t.name, t.dtype, t.shape, t.data});
  const std::string d2 = tmp_dir("missing2");
  ASSERT_TRUE(write_safetensors(d2 + "/model.safetensors", keep).ok());
  fs::copy_file(md + "/config.json", d2 + "/config.json", fs::copy_options::overwrite_existing);
  st = load_model_spec(d2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("model.layers.1.self_attn.k_norm.weight"), std::string::npos)
      << st.status().message();
}

TEST(GenModel, RejectsUnknownPresetAndArch) {
  EXPECT_FALSE(arch_from_short_name("gpt2").ok());
  auto hp = preset_hparams(Arch::qwen2, "70b");
  ASSERT_FALSE(hp.ok());
  EXPECT_NE(hp.status().message().find("tiny, 0.5b, 7b"), std::string::npos);
}
