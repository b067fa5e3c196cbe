// Device probe (over a fake /proc and /sys tree), simulated profiles, the kernel table, and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "plan_test_util.h"

namespace tailor {
namespace {

using testing::profile;
using testing::qwen_05b;
using testing::qwen_7b;
using testing::TempDir;

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

constexpr uint64_t kGiB = 1ull << 30;

TEST(Probe, MeminfoAvailableNotTotal) {
  TempDir root;
  write(root.path() + "/proc/cpuinfo",
        "processor\t: 0\nmodel name\t: Test CPU 9000\nprocessor\t: 1\nmodel name\t: Test CPU 9000\n");
  write(root.path() + "/proc/meminfo",
        "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    6000000 kB\n");
  const CpuInfo c = probe_cpu(root.path());
  EXPECT_EQ(c.model, "Test CPU 9000");
  EXPECT_EQ(c.cores, 2);
  EXPECT_EQ(c.mem_total, 16384000ull * 1024);
  EXPECT_EQ(c.mem_available, 6000000ull * 1024);
}

TEST(Probe, CgroupV2LimitCapsAvailableMemoryAndCpus) {
  TempDir root;
  write(root.path() + "/proc/cpuinfo", "processor\t: 0\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\n");
  write(root.path() + "/proc/meminfo", "MemTotal:       67108864 kB\nMemAvailable:   60000000 kB\n");
  write(root.path() + "/proc/self/cgroup", "0::/box\n");
  const std::string cg = root.path() + "/sys/fs/cgroup/box";
  write(cg + "/memory.max", std::to_string(8 * kGiB) + "\n");
  write(cg + "/memory.current", std::to_string(3 * kGiB) + "\n");
  write(cg + "/memory.stat", "anon 1073741824\ninactive_file " + std::to_string(1 * kGiB) + "\n");
  write(cg + "/cpu.max", "150000 100000\n");
  const CpuInfo c = probe_cpu(root.path());
  EXPECT_EQ(c.mem_total, 8 * kGiB);
  EXPECT_EQ(c.mem_available, 6 * kGiB);  // 8 - (3 - 1 reclaimable page cache)
  EXPECT_NE(c.mem_source.find("cgroup v2"), std::string::npos) << c.mem_source;
  EXPECT_EQ(c.cores, 2);  // 1.5 CPUs of quota -> 2
}

TEST(Probe, CgroupV1LimitAndUnlimitedSentinel) {
  TempDir root;
  write(root.path() + "/proc/meminfo", "MemTotal:       8000000 kB\nMemAvailable:   7000000 kB\n");
  const std::string v1 = root.path() + "/sys/fs/cgroup/memory";
  write(v1 + "/memory.limit_in_bytes", "9223372036854771712\n");  // "no limit"
  write(v1 + "/memory.usage_in_bytes", "100\n");
  EXPECT_EQ(probe_cpu(root.path()).mem_available, 7000000ull * 1024);
  write(v1 + "/memory.limit_in_bytes", std::to_string(2 * kGiB) + "\n");
  write(v1 + "/memory.usage_in_bytes", std::to_string(kGiB) + "\n");
  write(v1 + "/memory.stat", "total_inactive_file 0\n");
  const CpuInfo c = probe_cpu(root.path());
  EXPECT_EQ(c.mem_available, kGiB);
  EXPECT_EQ(c.mem_total, 2 * kGiB);
}

TEST(Probe, ThisMachineReportsSomethingSane) {
  const DeviceInfo d = probe_devices();
  EXPECT_GT(d.cpu.cores, 0);
  EXPECT_GT(d.cpu.mem_total, 0u);
  EXPECT_GT(d.cpu.mem_available, 0u);
  EXPECT_LE(d.cpu.mem_available, d.cpu.mem_total);
  if (d.gpus.empty()) EXPECT_FALSE(d.no_gpu_reason.empty());
  EXPECT_NE(format_device_info(d).find("cpu:"), std::string::npos);
  EXPECT_TRUE(parse_json(device_info_json(d), "probe").ok());
}

TEST(Profiles, EveryBuiltInParsesWithItsFacts) {
  for (const std::string& name : device_profile_names()) {
    auto d = device_profile(name);
    ASSERT_TRUE(d.ok()) << name << ": " << d.status().message();
    EXPECT_EQ(d->name, name);
    EXPECT_GT(d->cpu.mem_available, 0u);
    EXPECT_LE(d->cpu.mem_available, d->cpu.mem_total);
    for (const GpuInfo& g : d->gpus) EXPECT_LE(g.mem_free, g.mem_total) << name;
  }
  EXPECT_EQ(device_profile_names().size(), 10u);
  const DeviceInfo t4 = profile("nvidia-t4");
  ASSERT_EQ(t4.gpus.size(), 1u);
  EXPECT_EQ(t4.gpus[0].cc(), 75);
  EXPECT_FALSE(t4.gpus[0].bf16);
  EXPECT_TRUE(t4.gpus[0].fp16);
  EXPECT_TRUE(profile("nvidia-h100-80gb").gpus[0].fp8);
  EXPECT_FALSE(profile("nvidia-a100-80gb").gpus[0].fp8);
  const DeviceInfo m2 = profile("apple-m2-16gb");
  EXPECT_EQ(m2.gpus[0].backend, Backend::metal);
  EXPECT_TRUE(m2.gpus[0].unified_memory);
  EXPECT_FALSE(m2.gpus[0].bf16);
  EXPECT_TRUE(profile("cpu-avx2-8gb").gpus.empty());
  EXPECT_TRUE(profile("cpu-avx512bf16-32gb").cpu.features.avx512_bf16);
}

TEST(Profiles, UnknownNameListsTheKnownOnes) {
  auto d = device_profile("nvidia-b9000");
  ASSERT_FALSE(d.ok());
  for (const std::string& name : device_profile_names())
    EXPECT_NE(d.status().message().find(name), std::string::npos) << name;
  EXPECT_NE(d.status().message().find("nvidia-b9000"), std::string::npos);
}

TEST(Profiles, LoadsAJsonFileAndRejectsBadFields) {
  TempDir dir;
  const std::string f = dir.path() + "/box.json";
  write(f, R"({"name": "my-box", "cpu": {"model": "X", "cores": 4, "features": ["avx2", "fma", "f16c"],
               "mem_total_gib": 32, "mem_available_gib": 24},
               "gpus": [{"backend": "cuda", "name": "NVIDIA L4", "compute_capability": "8.9", "mem_total_gib": 22.5}]})");
  auto d = device_profile(f);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->name, "my-box");
  EXPECT_EQ(d->gpus[0].cc(), 89);
  EXPECT_TRUE(d->gpus[0].bf16);
  EXPECT_TRUE(d->gpus[0].fp8);
  EXPECT_LT(d->gpus[0].mem_free, d->gpus[0].mem_total);  // default leaves room for the context
  auto p = make_plan(qwen_7b(), tensors_from_hparams(qwen_7b(), DType::bf16), *d, {});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->fits);

  struct Bad {
    const char* json;
    const char* expect;
  } bad[] = {
      {R"({"cpu": {"mem_total_gib": 8}, "gpus": [{"name": "G", "compute_capability": "86", "mem_total_gib": 8}]})",
       "compute_capability"},
      {R"({"cpu": {"mem_total_gib": 8, "features": ["avx9"]}})", "avx9"},
      {R"({"cpu": {"mem_total_gib": "lots"}})", "mem_total_gib"},
      {R"({"cpu": {"mem_total_gib": 8, "mem_available_gib": 9}})", "exceeds"},
      {R"({"gpus": []})", "cpu"},
      {R"({"cpu": {"mem_total_gib": 8}, "gpu": []})", "unknown key"},
      {R"({"cpu": {"mem_total_gib": 8}, "gpus": [{"backend": "rocm", "name": "G", "mem_total_gib": 8}]})",
       "backend"},
      {R"({"cpu": )", "box.json"},
  };
  for (const Bad& b : bad) {
    write(f, b.json);
    auto r = device_profile(f);
    ASSERT_FALSE(r.ok()) << b.json;
    EXPECT_NE(r.status().message().find(b.expect), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("box.json"), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(device_profile(dir.path() + "/missing.json").ok());
}

TEST(Profiles, ExampleFileInTestData) {
  auto d = device_profile(std::string(TAILOR_SOURCE_DIR) + "/tests/data/plan/l4-workstation.json");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->name, "l4-workstation");
  ASSERT_EQ(d->gpus.size(), 1u);
  EXPECT_EQ(d->gpus[0].arch(), "sm_89");
  EXPECT_TRUE(d->cpu.features.avx512_bf16);
  // Llama-3-8B bf16 (16.1 GB) fits the L4's 21.9 GiB with bf16 kept (sm_89 has bf16 tensor cores).
  auto p = make_plan(testing::llama3_8b(), tensors_from_hparams(testing::llama3_8b(), DType::bf16), *d, {});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->fits) << p->refusal;
  EXPECT_EQ(p->n_gpu_layers, 32);
  EXPECT_EQ(p->kv_dtype_gpu, DType::bf16);
}

TEST(KernelTable, FactsPerBackend) {
  const Target t4 = gpu_target(profile("nvidia-t4").gpus[0]);
  EXPECT_TRUE(kernel_for(t4, OpClass::matmul, DType::bf16).slow);
  EXPECT_FALSE(kernel_for(t4, OpClass::matmul, DType::f16).slow);
  EXPECT_EQ(preferred_storage(t4, DType::bf16), DType::f16);
  EXPECT_EQ(wider_than_f16(t4), DType::f32);
  const Target a100 = gpu_target(profile("nvidia-a100-80gb").gpus[0]);
  EXPECT_FALSE(kernel_for(a100, OpClass::matmul, DType::bf16).slow);
  EXPECT_EQ(kernel_for(a100, OpClass::matmul, DType::bf16).compute, DType::bf16);
  EXPECT_EQ(preferred_storage(a100, DType::bf16), DType::bf16);
  EXPECT_FALSE(kernel_for(a100, OpClass::matmul, DType::q8_0).exists);
  const Target m2 = gpu_target(profile("apple-m2-16gb").gpus[0]);
  EXPECT_TRUE(kernel_for(m2, OpClass::matmul, DType::bf16).slow);
  EXPECT_EQ(preferred_storage(m2, DType::bf16), DType::f16);
  const Target avx2 = cpu_target(profile("cpu-avx2-16gb"));
  EXPECT_FALSE(kernel_for(avx2, OpClass::matmul, DType::bf16).slow);  // widened in registers
  EXPECT_EQ(preferred_storage(avx2, DType::bf16), DType::bf16);
  EXPECT_FALSE(kernel_for(avx2, OpClass::norm, DType::bf16).exists);  // norm weights are f32
  Target scalar = avx2;
  scalar.cpu = CpuFeatures{};
  EXPECT_TRUE(kernel_for(scalar, OpClass::matmul, DType::f32).slow);
  GpuInfo pascal = profile("nvidia-t4").gpus[0];
  pascal.cc_major = 6;
  pascal.cc_minor = 1;
  EXPECT_FALSE(kernel_for(gpu_target(pascal), OpClass::matmul, DType::f16).exists);
}

TEST(KernelTable, OldGpuFallsBackToCpuWithAWarning) {
  DeviceInfo d = profile("nvidia-t4");
  d.gpus[0].cc_major = 6;
  d.gpus[0].cc_minor = 0;
  d.gpus[0].name = "Tesla P100";
  auto p = make_plan(qwen_05b(), tensors_from_hparams(qwen_05b(), DType::bf16), d, {});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->use_gpu);
  EXPECT_EQ(p->n_gpu_layers, 0);
  ASSERT_FALSE(p->warnings.empty());
  EXPECT_NE(p->warnings[0].find("sm_60"), std::string::npos) << p->warnings[0];
}

TEST(BadInput, ContextBatchDtypeAndGpuOptions) {
  const HParams hp = qwen_05b();
  const auto ts = tensors_from_hparams(hp, DType::bf16);
  const DeviceInfo t4 = profile("nvidia-t4");
  auto err = [&](PlanOptions o, const DeviceInfo& d = {}) {
    auto p = make_plan(hp, ts, d.cpu.mem_total ? d : profile("nvidia-t4"), o);
    EXPECT_FALSE(p.ok());
    return p.ok() ? std::string() : p.status().message();
  };
  PlanOptions o;
  o.ctx = 0;
  EXPECT_NE(err(o).find("--ctx must be at least 1 (got 0)"), std::string::npos);
  o.ctx = -4096;
  EXPECT_NE(err(o).find("got -4096"), std::string::npos);
  o.ctx = 32769;
  const std::string too_long = err(o);
  EXPECT_NE(too_long.find("max_position_embeddings 32768"), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("--ctx 32768 or less"), std::string::npos) << too_long;
  o = {};
  o.batch = 0;
  EXPECT_NE(err(o).find("--batch"), std::string::npos);
  o = {};
  o.gpu_index = 2;
  EXPECT_NE(err(o).find("has 1 GPU"), std::string::npos);
  o = {};
  o.gpu_layers = 4;
  EXPECT_NE(err(o, profile("cpu-avx2-16gb")).find("needs a GPU"), std::string::npos);
  o = {};
  o.gpu_index = 1;
  EXPECT_NE(err(o, profile("cpu-avx2-16gb")).find("has no GPU"), std::string::npos);
  o = {};
  o.dtype = DType::q4_k;
  EXPECT_NE(err(o).find("not a storage dtype"), std::string::npos);

  auto unknown = parse_storage_dtype("fp9");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("bf16, f16, f32"), std::string::npos);
  auto q = parse_storage_dtype("q8_0");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("not supported as a storage dtype yet"), std::string::npos);
  EXPECT_EQ(*parse_storage_dtype("bfloat16"), DType::bf16);
  EXPECT_FALSE(parse_storage_dtype("i32").ok());

  // Linear rope scaling extends the limit; a layer index beyond the model is rejected.
  HParams scaled = hp;
  scaled.rope_scaling.type = RopeScaling::Type::linear;
  scaled.rope_scaling.factor = 2;
  PlanOptions longer;
  longer.ctx = 65536;
  EXPECT_TRUE(make_plan(scaled, ts, profile("nvidia-h100-80gb"), longer).ok());
  auto extra = ts;
  extra.push_back({"model.layers.99.mlp.up_proj.weight", DType::bf16, {4, 4}});
  EXPECT_FALSE(make_plan(hp, extra, t4, {}).ok());
  EXPECT_FALSE(make_plan(hp, {}, t4, {}).ok());
  HParams broken = hp;
  broken.n_layer = 0;
  EXPECT_NE(make_plan(broken, ts, t4, {}).status().message().find("num_hidden_layers"), std::string::npos);
}

TEST(LayerNames, LayerOfTensor) {
  EXPECT_EQ(layer_of_tensor("model.layers.12.mlp.up_proj.weight"), 12);
  EXPECT_EQ(layer_of_tensor("model.layers.0.input_layernorm.weight"), 0);
  EXPECT_EQ(layer_of_tensor("model.embed_tokens.weight"), -1);
  EXPECT_EQ(layer_of_tensor("model.layers.x.weight"), -1);
  EXPECT_EQ(layer_of_tensor("model.layers.3"), -1);
  EXPECT_EQ(layer_of_tensor("lm_head.weight"), -1);
}

}  // namespace
}  // namespace tailor
