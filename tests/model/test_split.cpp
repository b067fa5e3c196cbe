// Layer ranges and the GPU/CPU split on the CPU alone: a runner over layers [0, N) chained into one over
// [N, L) through the residual stream gives the full forward pass bit for bit (same ops in the same order),
// for every architecture, in prefill and decode over two slots; the split runner (here two CPU runners) does
// the same; bad ranges and misuse are clear errors. The CUDA side is in tests/cuda/test_split_runner.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "model/gen_model.h"
#include "model/runner.h"
#include "model/split_runner.h"

using namespace tailor;
namespace fs = std::filesystem;

namespace {

constexpr int kLayers = 4;

std::shared_ptr<const ModelSpec> gen(Arch arch, DType dt) {
  GenModelOptions o;
  o.arch = arch, o.preset = "tiny", o.n_layer = kLayers, o.dtype = dt, o.quiet = true, o.tokenizer_dir = "-";
  o.out_dir = (fs::temp_directory_path() /
               cat("tailor-split-", ::getpid(), "-", arch_hf_name(arch), "-", dtype_name(dt)))
                  .string();
  const Status st = generate_model(o);
  EXPECT_TRUE(st.ok()) << st.message();
  auto spec = load_model_spec(o.out_dir);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? std::make_shared<const ModelSpec>(std::move(spec).value()) : nullptr;
}

RunnerOptions range(RunnerOptions o, int begin, int end) {
  o.layer_begin = begin, o.layer_end = end;
  return o;
}

// One schedule over two slots: a prefill of both (all logits for slot 0), then `steps` decode steps of both,
// each step's tokens a fixed function of the step (the same inputs whatever the logits).
struct Schedule {
  std::vector<int32_t> a = {5, 900, 31, 77, 4000, 12, 8}, b = {3, 1, 4, 1, 5};
  std::vector<int32_t> pa, pb;
  int steps = 16;
  Schedule() {
    for (int i = 0; i < int(a.size()); ++i) pa.push_back(i);
    for (int i = 0; i < int(b.size()); ++i) pb.push_back(i);
  }
  std::vector<SeqBatchEntry> prefill() const { return {{0, a, pa, true}, {1, b, pb, false}}; }
};

// Runs the schedule through `step` (a full forward pass of some kind) and returns every logits vector.
template <class Step>
std::vector<std::vector<float>> run_schedule(const Schedule& s, Step step) {
  std::vector<std::vector<float>> out(1);
  EXPECT_TRUE(step(s.prefill(), out[0]).ok());
  for (int i = 0; i < s.steps; ++i) {
    const int32_t ta = (7 * i + 11) % 1000, tb = (13 * i + 2) % 1000;
    const int32_t qa = int32_t(s.a.size()) + i, qb = int32_t(s.b.size()) + i;
    const std::vector<SeqBatchEntry> d = {{0, {&ta, 1}, {&qa, 1}, false}, {1, {&tb, 1}, {&qb, 1}, false}};
    out.emplace_back();
    const Status st = step(d, out.back());
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return out;
}

std::vector<std::vector<float>> full_forward(std::shared_ptr<const ModelSpec> spec, const RunnerOptions& ro,
                                             const Schedule& s) {
  auto r = make_cpu_runner(spec, ro);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return {};
  return run_schedule(
      s, [&](const std::vector<SeqBatchEntry>& b, std::vector<float>& l) { return (*r)->forward(b, l); });
}

}  // namespace

// Layers [0, N) then [N, L) from the residual stream equal the full forward pass bit for bit, every arch.
TEST(LayerRange, ChainedRangesEqualTheFullForwardForEveryArch) {
  for (Arch arch : {Arch::llama, Arch::qwen2, Arch::qwen3, Arch::granite, Arch::mistral}) {
    SCOPED_TRACE(arch_hf_name(arch));
    auto spec = gen(arch, DType::f32);
    ASSERT_TRUE(spec);
    RunnerOptions ro;
    ro.n_ctx = 64, ro.n_slots = 2, ro.weight_dtype = DType::f32, ro.kv_dtype = DType::f32;
    const Schedule s;
    const auto want = full_forward(spec, ro, s);
    for (int n = 1; n < kLayers; ++n) {
      SCOPED_TRACE(cat("N = ", n));
      auto front = make_cpu_runner(spec, range(ro, 0, n));
      auto back = make_cpu_runner(spec, range(ro, n, -1));
      ASSERT_TRUE(front.ok()) << front.status().message();
      ASSERT_TRUE(back.ok()) << back.status().message();
      std::vector<float> x;
      const auto got = run_schedule(s, [&](const std::vector<SeqBatchEntry>& b, std::vector<float>& l) {
        TAILOR_RETURN_IF_ERROR((*front)->embed(b, x));
        TAILOR_RETURN_IF_ERROR((*front)->forward_layers(b, x));
        return (*back)->forward_from_hidden(b, x, l);
      });
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "call " << i << " (0 = prefill)";
    }
    fs::remove_all(spec->dir);
  }
}

// Three ranges chained ([0, 1), [1, 3), [3, 4)), the back one embedding (as a split does), bf16 weights
// and activations: still the full forward pass bit for bit.
TEST(LayerRange, MiddleRangeAndBf16) {
  auto spec = gen(Arch::qwen3, DType::bf16);
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 64, ro.n_slots = 2, ro.weight_dtype = DType::bf16, ro.kv_dtype = DType::bf16,
  ro.act_dtype = DType::bf16;
  const Schedule s;
  const auto want = full_forward(spec, ro, s);
  auto r0 = make_cpu_runner(spec, range(ro, 0, 1));
  auto r1 = make_cpu_runner(spec, range(ro, 1, 3));
  auto r2 = make_cpu_runner(spec, range(ro, 3, kLayers));
  ASSERT_TRUE(r0.ok() && r1.ok() && r2.ok());
  std::vector<float> x;
  const auto got = run_schedule(s, [&](const std::vector<SeqBatchEntry>& b, std::vector<float>& l) {
    TAILOR_RETURN_IF_ERROR((*r2)->embed(b, x));
    TAILOR_RETURN_IF_ERROR((*r0)->forward_layers(b, x));
    TAILOR_RETURN_IF_ERROR((*r1)->forward_layers(b, x));
    return (*r2)->forward_from_hidden(b, x, l);
  });
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "call " << i;
  fs::remove_all(spec->dir);
}

// The split runner over two CPU runners: forward and forward_argmax equal the full runner's, and describe()
// names both parts.
TEST(SplitRunner, TwoCpuPartsEqualOneRunner) {
  auto spec = gen(Arch::llama, DType::f32);
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 64, ro.n_slots = 2, ro.weight_dtype = DType::f32, ro.kv_dtype = DType::f32;
  const Schedule s;
  const auto want = full_forward(spec, ro, s);
  for (int n = 1; n < kLayers; ++n) {
    SCOPED_TRACE(cat("N = ", n));
    auto front = make_cpu_runner(spec, range(ro, 0, n));
    auto back = make_cpu_runner(spec, range(ro, n, -1));
    ASSERT_TRUE(front.ok() && back.ok());
    auto split = make_split_runner(std::move(front).value(), "cpu-a", std::move(back).value(), "cpu-b");
    ASSERT_TRUE(split.ok()) << split.status().message();
    Runner& r = **split;
    const std::string d = r.describe();
    EXPECT_EQ(d.rfind(cat("split: ", n, "/", kLayers, " layers on cpu-a ("), 0), 0u) << d;
    EXPECT_NE(d.find(cat("), ", kLayers - n, " on cpu-b (")), std::string::npos) << d;
    EXPECT_EQ(r.options().n_slots, 2);
    EXPECT_EQ(r.options().layer_end, -1);
    ASSERT_NE(split_front(r), nullptr);
    EXPECT_EQ(split_front(r)->options().layer_end, n);
    const auto got = run_schedule(
        s, [&](const std::vector<SeqBatchEntry>& b, std::vector<float>& l) { return r.forward(b, l); });
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "call " << i;
    // Replaying the last step (same tokens, same positions) through the argmax path picks the same ids.
    const int32_t ta = (7 * 15 + 11) % 1000, tb = (13 * 15 + 2) % 1000;
    const int32_t qa = int32_t(s.a.size()) + 15, qb = int32_t(s.b.size()) + 15;
    const std::vector<SeqBatchEntry> d2 = {{0, {&ta, 1}, {&qa, 1}, false}, {1, {&tb, 1}, {&qb, 1}, false}};
    std::vector<int32_t> ids;
    ASSERT_TRUE(r.forward_argmax(d2, ids).ok());
    const size_t V = size_t(spec->hp.n_vocab);
    ASSERT_EQ(ids.size(), 2u);
    for (size_t q = 0; q < 2; ++q) {
      const float* row = want.back().data() + q * V;
      EXPECT_EQ(ids[q], int32_t(std::max_element(row, row + V) - row)) << "slot " << q;
    }
  }
  fs::remove_all(spec->dir);
}

TEST(SplitRunner, BadRangesAreClearErrors) {
  auto spec = gen(Arch::qwen2, DType::bf16);
  ASSERT_TRUE(spec);
  RunnerOptions ro;
  ro.n_ctx = 16;
  // Empty or out-of-model ranges.
  for (auto [b, e] : {std::pair{2, 2}, {3, 1}, {0, kLayers + 1}, {-1, 2}, {kLayers, -1}}) {
    auto r = make_cpu_runner(spec, range(ro, b, e));
    ASSERT_FALSE(r.ok()) << b << " " << e;
    EXPECT_NE(r.status().message().find("layer range"), std::string::npos) << r.status().message();
  }
  // A partial runner refuses what it cannot do, naming what to use.
  auto front = make_cpu_runner(spec, range(ro, 0, 2));
  ASSERT_TRUE(front.ok());
  std::vector<float> logits, x;
  const std::vector<int32_t> t = {1, 2}, p = {0, 1};
  const SeqBatchEntry e{0, t, p, false};
  Status st = (*front)->forward({&e, 1}, logits);
  EXPECT_EQ(st.code(), ErrorCode::unsupported);
  EXPECT_NE(st.message().find("forward_layers"), std::string::npos) << st.message();
  st = (*front)->forward_from_hidden({&e, 1}, x, logits);
  EXPECT_EQ(st.code(), ErrorCode::unsupported);
  x.assign(3, 0.0f);  // not 2 x n_embd
  st = (*front)->forward_layers({&e, 1}, x);
  EXPECT_EQ(st.code(), ErrorCode::invalid_argument);
  EXPECT_NE(st.message().find("residual stream"), std::string::npos) << st.message();

  // The split refuses parts that do not meet at one layer, or an empty side.
  auto mk = [&](int b, int e2) { return std::move(make_cpu_runner(spec, range(ro, b, e2))).value(); };
  auto s1 = make_split_runner(mk(0, 1), "a", mk(2, -1), "b");
  ASSERT_FALSE(s1.ok());
  EXPECT_NE(s1.status().message().find("must hold layers [1, 4)"), std::string::npos)
      << s1.status().message();
  auto s2 = make_split_runner(mk(0, kLayers), "a", mk(1, -1), "b");
  ASSERT_FALSE(s2.ok());
  EXPECT_NE(s2.status().message().find("use one runner"), std::string::npos) << s2.status().message();
  RunnerOptions other = ro;
  other.n_ctx = 32;
  auto s3 =
      make_split_runner(mk(0, 2), "a", std::move(make_cpu_runner(spec, range(other, 2, -1))).value(), "b");
  ASSERT_FALSE(s3.ok());
  EXPECT_NE(s3.status().message().find("same context"), std::string::npos) << s3.status().message();
  fs::remove_all(spec->dir);
}
