// The scenarios: simulated profiles x model shapes (Qwen2.5-0.5B/3B/7B, Llama-3-8B).
#include <gtest/gtest.h>

#include <algorithm>

#include "plan_test_util.h"

namespace tailor {
namespace {

using testing::llama3_8b;
using testing::profile;
using testing::qwen_05b;
using testing::qwen_3b;
using testing::qwen_7b;

Plan plan_for(const HParams& hp, const std::string& prof, PlanOptions o = {}, DType stored = DType::bf16) {
  auto p = make_plan(hp, tensors_from_hparams(hp, stored), profile(prof), o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return *p;
}

// Every matrix placed on `place` is stored as `t`.
void expect_matrices(const Plan& p, Place place, DType t) {
  int n = 0;
  for (const TensorPlan& x : p.tensors) {
    if (x.shape.rank < 2 || x.place != place) continue;
    EXPECT_EQ(x.storage, t) << x.name << " is " << dtype_name(x.storage);
    ++n;
  }
  EXPECT_GT(n, 0);
}

bool any_warning(const Plan& p, const std::string& needle) {
  for (const std::string& w : plan_warnings(p))
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

const OpPlan* find_op(const Plan& p, OpClass op, Place place) {
  for (const OpPlan& o : p.ops)
    if (o.op == op && o.place == place) return &o;
  return nullptr;
}

// Weights of the model in bf16 (what the file holds).
uint64_t stored_bytes(const HParams& hp) {
  uint64_t b = 0;
  for (const TensorDesc& d : tensors_from_hparams(hp, DType::bf16)) b += 2 * uint64_t(d.shape.numel());
  return b;
}

TEST(PlanScenario, AppleM3_7B_ConvertsToF16AllLayersOnGpuAndFits) {
  const Plan p = plan_for(qwen_7b(), "apple-m3-24gb");
  EXPECT_TRUE(p.fits) << p.refusal;
  EXPECT_EQ(p.n_gpu_layers, p.n_layer);
  EXPECT_TRUE(p.embd_on_gpu);
  EXPECT_TRUE(p.output_on_gpu);
  expect_matrices(p, Place::gpu, DType::f16);  // Metal M1-M3: no bf16 kernels -> f16
  EXPECT_EQ(p.kv_dtype_gpu, DType::f16);
  const OpPlan* mm = find_op(p, OpClass::matmul, Place::gpu);
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->data, DType::f16);
  EXPECT_FALSE(mm->slow);
  EXPECT_FALSE(any_warning(p, "slow path")) << format_plan(p);
  EXPECT_TRUE(p.mem.unified);
  EXPECT_LE(p.mem.gpu_need, p.mem.gpu_free);
  EXPECT_LE(p.mem.host_need, p.mem.host_available);
  EXPECT_GE(p.mem.host_need, p.mem.gpu_need);  // unified: the GPU's share is host RAM
}

TEST(PlanScenario, AppleM2_16GB_3B_ConvertsToF16AllLayersOnGpuAndFits) {
  const Plan p = plan_for(qwen_3b(), "apple-m2-16gb");
  EXPECT_TRUE(p.fits) << p.refusal;
  EXPECT_EQ(p.n_gpu_layers, p.n_layer);
  expect_matrices(p, Place::gpu, DType::f16);
  EXPECT_FALSE(any_warning(p, "slow path"));
}

// A bf16 7B (15.2 GB in f16) cannot run on a 16 GB M2 without swapping: Metal's working set is ~10.7 GiB and
// macOS leaves ~11 GiB to apps. The precision choice still holds (f16 on the GPU), and the refusal says what
// fits.
TEST(PlanScenario, AppleM2_16GB_7B_PicksF16ButRefusesNamingWhatFits) {
  const Plan p = plan_for(qwen_7b(), "apple-m2-16gb");
  EXPECT_FALSE(p.fits);
  EXPECT_GT(p.n_gpu_layers, 0);
  expect_matrices(p, Place::gpu, DType::f16);
  EXPECT_EQ(plan_status(p).code(), ErrorCode::out_of_memory);
  EXPECT_NE(p.refusal.find("q8_0 would need"), std::string::npos) << p.refusal;
  EXPECT_NE(p.refusal.find("and fit (not yet supported)"), std::string::npos) << p.refusal;
  EXPECT_NE(p.refusal.find("available"), std::string::npos) << p.refusal;
}

TEST(PlanScenario, T4_UsesF16) {
  for (const HParams& hp : {qwen_05b(), qwen_7b(), llama3_8b()}) {
    const Plan p = plan_for(hp, "nvidia-t4");
    SCOPED_TRACE(format_plan(p));
    EXPECT_TRUE(p.fits) << p.refusal;
    expect_matrices(p, Place::gpu, DType::f16);  // sm_75: bf16 would be emulated
    EXPECT_EQ(p.kv_dtype_gpu, DType::f16);
    const OpPlan* mm = find_op(p, OpClass::matmul, Place::gpu);
    ASSERT_NE(mm, nullptr);
    EXPECT_EQ(mm->compute, DType::f16);
    EXPECT_FALSE(mm->slow);
    EXPECT_FALSE(any_warning(p, "slow path"));
    // No data was given, so the f16 range check is left to the loader - and the plan says so.
    EXPECT_TRUE(any_warning(p, "without a range check"));
  }
  // 0.5B fits entirely; 7B (15.2 GB) keeps its embedding table in host RAM so every layer and lm_head fit.
  const Plan small = plan_for(qwen_05b(), "nvidia-t4");
  EXPECT_EQ(small.n_gpu_layers, small.n_layer);
  EXPECT_TRUE(small.embd_on_gpu);
  const Plan big = plan_for(qwen_7b(), "nvidia-t4");
  EXPECT_EQ(big.n_gpu_layers, big.n_layer);
  EXPECT_FALSE(big.embd_on_gpu);
  EXPECT_TRUE(big.output_on_gpu);
  EXPECT_LE(big.mem.gpu_need, big.mem.gpu_free);
}

TEST(PlanScenario, A100H100H200_UseBf16InPlace) {
  for (const char* prof : {"nvidia-a100-80gb", "nvidia-h100-80gb", "nvidia-h200-141gb"}) {
    for (const HParams& hp : {qwen_05b(), qwen_7b(), llama3_8b()}) {
      const Plan p = plan_for(hp, prof);
      SCOPED_TRACE(std::string(prof) + "\n" + format_plan(p));
      EXPECT_TRUE(p.fits);
      EXPECT_EQ(p.n_gpu_layers, p.n_layer);
      expect_matrices(p, Place::gpu, DType::bf16);
      for (const TensorPlan& t : p.tensors)
        if (t.shape.rank >= 2) EXPECT_FALSE(t.converted()) << t.name;  // used as stored: no conversion pass
      EXPECT_EQ(p.kv_dtype_gpu, DType::bf16);
      EXPECT_TRUE(plan_warnings(p).empty());
      EXPECT_EQ(p.mem.gpu_weights, p.mem.weights_total());
    }
  }
}

TEST(PlanScenario, Rtx3060_7B_SplitsLayersAndFitsTheRequestedContext) {
  PlanOptions o;
  o.ctx = 8192;
  const Plan p = plan_for(qwen_7b(), "nvidia-rtx3060-12gb", o);
  SCOPED_TRACE(format_plan(p));
  EXPECT_TRUE(p.fits) << p.refusal;
  EXPECT_GT(p.n_gpu_layers, 0);
  EXPECT_LT(p.n_gpu_layers, p.n_layer);
  EXPECT_EQ(p.ctx, 8192);
  EXPECT_GE(p.max_ctx, 8192);
  EXPECT_LE(p.mem.gpu_need, p.mem.gpu_free);
  EXPECT_LE(p.mem.host_need, p.mem.host_available);
  expect_matrices(p, Place::gpu, DType::bf16);  // sm_86 has bf16 tensor cores: no conversion
  for (const TensorPlan& t : p.tensors) {
    if (t.layer >= 0) EXPECT_EQ(t.place, t.layer < p.n_gpu_layers ? Place::gpu : Place::cpu) << t.name;
  }
  EXPECT_TRUE(any_warning(p, "layers fit on cuda:0"));
  // The split is the largest that fits: one more layer would not.
  PlanOptions more = o;
  more.gpu_layers = p.n_gpu_layers + 1;
  const Plan q = plan_for(qwen_7b(), "nvidia-rtx3060-12gb", more);
  EXPECT_FALSE(q.fits);
  EXPECT_NE(q.refusal.find(cat("--gpu-layers ", p.n_gpu_layers, " fits")), std::string::npos) << q.refusal;
  // A longer context leaves room for fewer layers.
  PlanOptions longer = o;
  longer.ctx = 32768;
  const Plan l = plan_for(qwen_7b(), "nvidia-rtx3060-12gb", longer);
  EXPECT_TRUE(l.fits);
  EXPECT_LT(l.n_gpu_layers, p.n_gpu_layers);
}

TEST(PlanScenario, CpuAvx2_8GB_7B_RefusesNamingWhatWouldFit) {
  const Plan p = plan_for(qwen_7b(), "cpu-avx2-8gb");
  EXPECT_FALSE(p.fits);
  EXPECT_FALSE(p.use_gpu);
  const Status st = plan_status(p);
  EXPECT_EQ(st.code(), ErrorCode::out_of_memory);
  EXPECT_GT(p.mem.host_need, stored_bytes(qwen_7b()));  // weights + KV + margin
  EXPECT_GT(p.mem.host_need, p.mem.host_available);
  // The needed and available amounts are in the message, then the alternatives: q8_0 (~8.1 GB) is still too
  // much for 5.9 GB, q4_k (~4.3 GB) would fit; a shorter context alone does not help enough.
  EXPECT_NE(st.message().find(format_bytes(p.mem.host_need)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(format_bytes(p.mem.host_available)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("q8_0 would need"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("(still too much) (not yet supported)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("and fit (not yet supported)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("saves only"), std::string::npos) << st.message();
  // CPU keeps bf16 (AVX2 widens it in registers at full speed): no conversion, no slow path.
  expect_matrices(p, Place::cpu, DType::bf16);
  EXPECT_FALSE(any_warning(p, "slow path"));
}

TEST(PlanScenario, CpuOnlyFitsSmallModelAndReportsTheLongestContext) {
  const Plan p = plan_for(qwen_05b(), "cpu-avx2-8gb");
  EXPECT_TRUE(p.fits) << p.refusal;
  EXPECT_EQ(p.n_gpu_layers, 0);
  EXPECT_EQ(p.ctx, 4096);
  EXPECT_EQ(p.max_ctx, p.ctx_limit);  // 0.5B's KV cache is small: the model's full 32k fits in 5.5 GiB
  const OpPlan* mm = find_op(p, OpClass::matmul, Place::cpu);
  ASSERT_NE(mm, nullptr);
  EXPECT_NE(mm->kernel.find("avx2"), std::string::npos) << mm->kernel;
  // With AVX512_BF16 the bf16 dot product is native.
  const Plan q = plan_for(qwen_05b(), "cpu-avx512bf16-32gb");
  const OpPlan* mm2 = find_op(q, OpClass::matmul, Place::cpu);
  ASSERT_NE(mm2, nullptr);
  EXPECT_EQ(mm2->compute, DType::bf16);
}

TEST(PlanScenario, ContextThatDoesNotFitIsRefusedWithTheLongestThatDoes) {
  PlanOptions o;
  o.ctx = 32768;
  o.batch = 64;
  const Plan p = plan_for(qwen_05b(), "cpu-avx2-8gb", o);
  EXPECT_FALSE(p.fits);
  EXPECT_NE(p.refusal.find("--ctx "), std::string::npos);
  EXPECT_NE(p.refusal.find(" fits (saves"), std::string::npos) << p.refusal;
  EXPECT_NE(p.refusal.find("--batch 1 would need"), std::string::npos) << p.refusal;
  EXPECT_GT(p.max_ctx, 0);
  EXPECT_LT(p.max_ctx, 32768);
  o.ctx = p.max_ctx;  // the reported longest context does fit
  EXPECT_TRUE(plan_for(qwen_05b(), "cpu-avx2-8gb", o).fits);
}

TEST(PlanScenario, DtypeOverrideIsHonouredWithAWarning) {
  PlanOptions o;
  o.dtype = DType::bf16;
  const Plan p = plan_for(qwen_05b(), "nvidia-t4", o);  // bf16 on sm_75: emulated
  expect_matrices(p, Place::gpu, DType::bf16);
  EXPECT_TRUE(any_warning(p, "slow path"));
  EXPECT_TRUE(any_warning(p, "--dtype bf16 overrides the plan's choice (f16"));
  o.dtype = DType::f32;
  const Plan q = plan_for(qwen_05b(), "nvidia-h100-80gb", o);
  expect_matrices(q, Place::gpu, DType::f32);
  EXPECT_TRUE(any_warning(q, "f32 doubles"));
  // A whole-model f32 plan only when asked: an f32 checkpoint is stored in a half type by default.
  const Plan r = plan_for(qwen_05b(), "nvidia-h100-80gb", {}, DType::f32);
  for (const TensorPlan& t : r.tensors)
    if (t.shape.rank >= 2) EXPECT_NE(t.storage, DType::f32) << t.name;
}

TEST(PlanScenario, SummaryLineAndJsonDescribeThePlan) {
  const Plan p = plan_for(qwen_7b(), "nvidia-rtx3060-12gb");
  const std::string line = plan_summary_line(p);
  EXPECT_NE(line.find(cat(p.n_gpu_layers, "/28 layers on GPU")), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const std::string table = format_plan(p);
  for (const char* section : {"placement:", "ops:", "memory", "warnings:", "NVIDIA GeForce RTX 3060"})
    EXPECT_NE(table.find(section), std::string::npos) << section;
  const std::string js = plan_json(p);
  EXPECT_NE(js.find("\"n_gpu_layers\": " + std::to_string(p.n_gpu_layers)), std::string::npos);
}

}  // namespace
}  // namespace tailor
