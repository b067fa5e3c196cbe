// Weights beyond f16's range: the plan keeps such a tensor wider and names it; the load-time conversion never
// produces Inf; activations are checked for NaN/Inf.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "io/safetensors.h"
#include "plan/convert.h"
#include "plan_test_util.h"

namespace tailor {
namespace {

using testing::profile;
using testing::TempDir;
using testing::tiny_qwen;

const std::string kBig = "model.layers.1.mlp.down_proj.weight";

std::vector<TensorDesc> with_max_abs(const HParams& hp, const std::string& name, float max_abs) {
  auto ts = tensors_from_hparams(hp, DType::bf16);
  for (TensorDesc& t : ts) t.max_abs = t.name == name ? max_abs : 1.0f;
  return ts;
}

TEST(RangeGuard, TensorBeyondF16IsKeptWiderAndReported) {
  const HParams hp = tiny_qwen();
  struct Case {
    const char* profile;
    DType wider;
  } cases[] = {{"nvidia-t4", DType::f32}, {"apple-m2-16gb", DType::f32}};
  for (const Case& c : cases) {
    auto p = make_plan(hp, with_max_abs(hp, kBig, 70000.0f), profile(c.profile), {});
    ASSERT_TRUE(p.ok()) << p.status().message();
    SCOPED_TRACE(format_plan(*p));
    const TensorPlan* big = find_tensor_plan(*p, kBig);
    ASSERT_NE(big, nullptr);
    EXPECT_TRUE(big->kept_wider);
    EXPECT_EQ(big->storage, c.wider);
    EXPECT_EQ(big->bytes, uint64_t(big->shape.numel()) * dtype_size(c.wider));
    // Every other matrix is converted to f16, checked.
    for (const TensorPlan& t : p->tensors) {
      if (t.name == kBig || t.shape.rank < 2) continue;
      EXPECT_EQ(t.storage, DType::f16) << t.name;
      EXPECT_FALSE(t.range_unchecked) << t.name;
    }
    bool warned = false;
    for (const std::string& w : plan_warnings(*p))
      warned |= w.find(kBig) != std::string::npos && w.find("65504") != std::string::npos;
    EXPECT_TRUE(warned);
    bool op_row = false;  // the op table lists the exception with its own kernel
    for (const OpPlan& o : p->ops) op_row |= o.where.find(kBig) != std::string::npos && o.data == c.wider;
    EXPECT_TRUE(op_row);
  }
}

TEST(RangeGuard, ForcedF16OnABf16DeviceKeepsTheTensorInBf16) {
  const HParams hp = tiny_qwen();
  PlanOptions o;
  o.dtype = DType::f16;
  auto p = make_plan(hp, with_max_abs(hp, kBig, 1e5f), profile("nvidia-a100-80gb"), o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(find_tensor_plan(*p, kBig)->storage, DType::bf16);  // wider, and native on sm_80
  EXPECT_TRUE(find_tensor_plan(*p, kBig)->kept_wider);
}

TEST(RangeGuard, BoundaryValueFitsF16) {
  const HParams hp = tiny_qwen();
  auto p = make_plan(hp, with_max_abs(hp, kBig, 65504.0f), profile("nvidia-t4"), {});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(find_tensor_plan(*p, kBig)->storage, DType::f16);
  EXPECT_FALSE(find_tensor_plan(*p, kBig)->kept_wider);
}

TEST(RangeGuard, RangeStatsMatchesANaiveScan) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 300.0f);
  const size_t n = (size_t(1) << 21) + 77;  // several parallel chunks and a ragged tail
  std::vector<float> f(n);
  std::vector<uint16_t> b(n), h(n);
  for (size_t i = 0; i < n; ++i) f[i] = nd(rng);
  f[n - 3] = -123456.0f;  // the largest magnitude is negative and in the tail
  for (size_t i = 0; i < n; ++i) {
    b[i] = f32_to_bf16(f[i]);
    h[i] = f32_to_f16(std::clamp(f[i], -60000.0f, 60000.0f));
  }
  float mf = 0, mb = 0, mh = 0;
  for (size_t i = 0; i < n; ++i) {
    mf = std::max(mf, std::fabs(f[i]));
    mb = std::max(mb, std::fabs(bf16_to_f32(b[i])));
    mh = std::max(mh, std::fabs(f16_to_f32(h[i])));
  }
  auto rf = range_stats(f.data(), DType::f32, n);
  auto rb = range_stats(b.data(), DType::bf16, n);
  auto rh = range_stats(h.data(), DType::f16, n);
  ASSERT_TRUE(rf.ok() && rb.ok() && rh.ok());
  EXPECT_EQ(rf->max_abs, mf);
  EXPECT_EQ(rb->max_abs, mb);
  EXPECT_EQ(rh->max_abs, mh);
  EXPECT_EQ(rf->n_nonfinite, 0u);
  f[5] = NAN;
  f[n - 1] = -INFINITY;
  b[9] = 0x7f80;  // +inf
  auto rf2 = range_stats(f.data(), DType::f32, n);
  auto rb2 = range_stats(b.data(), DType::bf16, n);
  EXPECT_EQ(rf2->n_nonfinite, 2u);
  EXPECT_EQ(rf2->max_abs, mf);  // NaN/Inf do not count as the maximum
  EXPECT_EQ(rb2->n_nonfinite, 1u);
}

TEST(RangeGuard, Bf16ToF16ConversionIsExactForEveryRepresentableValue) {
  // Every bf16 bit pattern whose value fits f16: the converted buffer equals the scalar reference.
  std::vector<uint16_t> src;
  for (uint32_t u = 0; u < 65536; ++u) {
    const float v = bf16_to_f32(uint16_t(u));
    if (std::isfinite(v) && std::fabs(v) <= 65504.0f) src.push_back(uint16_t(u));
  }
  SafeTensor st;
  st.name = "all_bf16";
  st.dtype = DType::bf16;
  st.shape = {int64_t(src.size())};
  st.data = reinterpret_cast<const uint8_t*>(src.data());
  st.nbytes = src.size() * 2;
  auto c = convert_for_storage(st, DType::f16);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const uint16_t* out = reinterpret_cast<const uint16_t*>(c->data.get());
  for (size_t i = 0; i < src.size(); ++i)
    ASSERT_EQ(out[i], f32_to_f16(bf16_to_f32(src[i]))) << "bf16 0x" << std::hex << src[i];
}

TEST(RangeGuard, ConversionRefusesToProduceInf) {
  std::vector<uint16_t> w(1000, f32_to_bf16(0.5f));
  w[600] = f32_to_bf16(-70000.0f);
  SafeTensor st;
  st.name = "model.layers.0.mlp.up_proj.weight";
  st.dtype = DType::bf16;
  st.shape = {10, 100};
  st.data = reinterpret_cast<const uint8_t*>(w.data());
  st.nbytes = w.size() * 2;
  auto c = convert_for_storage(st, DType::f16);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(st.name), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("65504"), std::string::npos) << c.status().message();
  // The same tensor to f32 is fine and exact.
  auto f = convert_for_storage(st, DType::f32);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(reinterpret_cast<const float*>(f->data.get())[600], bf16_to_f32(w[600]));
  EXPECT_EQ(f->max_abs, 70144.0f);  // bf16 rounds 70000 to 70144
  // A NaN in the file is a corrupt checkpoint, not something to convert.
  w[600] = 0x7fc0;
  auto n = convert_for_storage(st, DType::f16);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), ErrorCode::corrupt);
  // f32 -> bf16 rounding can overflow near FLT_MAX: refused too.
  std::vector<float> big(4, 3.4028235e38f);
  SafeTensor fs;
  fs.name = "huge";
  fs.dtype = DType::f32;
  fs.shape = {4};
  fs.data = reinterpret_cast<const uint8_t*>(big.data());
  fs.nbytes = 16;
  EXPECT_FALSE(convert_for_storage(fs, DType::bf16).ok());
  // Bad requests.
  EXPECT_FALSE(convert_for_storage(st, DType::q8_0).ok());
  st.nbytes = 10;
  EXPECT_EQ(convert_for_storage(st, DType::f16).status().code(), ErrorCode::corrupt);
}

TEST(RangeGuard, ConvertIntoACallersBuffer) {
  std::vector<float> w = {1.5f, -2.25f, 65504.0f, 0.0f};
  SafeTensor st;
  st.name = "w";
  st.dtype = DType::f32;
  st.shape = {4};
  st.data = reinterpret_cast<const uint8_t*>(w.data());
  st.nbytes = 16;
  std::vector<uint16_t> out(4, 0xffff);
  auto r = convert_into(st, DType::f16, out.data(), 8);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->max_abs, 65504.0f);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f16_to_f32(out[size_t(i)]), w[size_t(i)]);
  auto small = convert_into(st, DType::f16, out.data(), 6);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("needs 8"), std::string::npos) << small.status().message();
}

// A generated model folder whose weights exceed f16's range in one tensor, planned for an f16-only GPU.
TEST(RangeGuard, GeneratedModelBeyondF16RangeIsPlannedAndConvertedWithoutInf) {
  TempDir dir;
  const HParams hp = tiny_qwen();
  {
    std::ofstream cfg(dir.path() + "/config.json");
    cfg << R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 256, "hidden_size": 64,
               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "intermediate_size": 128, "max_position_embeddings": 512, "tie_word_embeddings": false,
               "torch_dtype": "bfloat16"})";
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<std::vector<uint16_t>> bufs;
  std::vector<TensorToWrite> tw;
  for (const TensorSpec& ts : expected_tensors(hp)) {
    std::vector<uint16_t> b(size_t(ts.shape.numel()));
    for (auto& x : b) x = f32_to_bf16(nd(rng));
    if (ts.name == kBig) {
      b[17] = f32_to_bf16(1.0e5f);
      b[b.size() - 1] = f32_to_bf16(-3.0e5f);
    }
    bufs.push_back(std::move(b));
    tw.push_back({ts.name, DType::bf16, ts.shape, bufs.back().data()});
  }
  ASSERT_TRUE(write_safetensors(dir.path() + "/model.safetensors", tw).ok());

  auto spec = load_model_spec(dir.path());
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto plan = make_plan(*spec, profile("nvidia-t4"), {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  SCOPED_TRACE(format_plan(*plan));
  EXPECT_TRUE(plan->fits);
  const TensorPlan* big = find_tensor_plan(*plan, kBig);
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(big->kept_wider);
  EXPECT_EQ(big->storage, DType::f32);
  ASSERT_TRUE(big->max_abs.has_value());
  EXPECT_EQ(*big->max_abs, std::fabs(bf16_to_f32(f32_to_bf16(-3.0e5f))));  // read from the mmapped bytes
  EXPECT_NE(plan_json(*plan).find("\"kept_wider\": true"), std::string::npos);

  // Load as the plan says: every conversion succeeds and no converted value is Inf or NaN.
  for (const TensorPlan& t : plan->tensors) {
    EXPECT_FALSE(t.range_unchecked) << t.name;  // the data was there, so every f16 candidate was checked
    const SafeTensor* st = spec->weights->find(t.name);
    ASSERT_NE(st, nullptr);
    auto c = convert_for_storage(*st, t.storage);
    ASSERT_TRUE(c.ok()) << c.status().message();
    auto r = range_stats(c->data.get(), c->dtype, uint64_t(c->shape.numel()));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->n_nonfinite, 0u) << t.name;
  }
  // What the guard prevents: forcing that tensor to f16 is refused, by name.
  auto bad = convert_for_storage(*spec->weights->find(kBig), DType::f16);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(kBig), std::string::npos);
}

TEST(CheckFinite, FlagsNanAndInfWithTheLayer) {
  std::vector<float> x(1000, 1.0f);
  EXPECT_TRUE(check_finite(x, "layer 3 mlp output").ok());
  x[417] = INFINITY;
  x[900] = NAN;
  Status st = check_finite(x, "layer 3 mlp output");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("layer 3 mlp output"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("1 Inf, 1 NaN"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("index 417"), std::string::npos) << st.message();
  EXPECT_TRUE(check_finite({}, "empty").ok());
  std::vector<float> big(65536, 65504.0f);  // large but finite
  EXPECT_TRUE(check_finite(big, "big").ok());
}

}  // namespace
}  // namespace tailor
