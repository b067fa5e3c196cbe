// The CPU forward pass against HF transformers 5.17 (fixtures from tools/make_golden.py, tests/data/golden/).
// Teacher forcing: the reference tokens are fed back, and every step's logits must be within the
// relative-error bound; in f32 the free-running greedy tokens must equal the reference for all 32 steps.
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "model/runner.h"

using namespace tailor;

namespace {

const char* kArchs[] = {"qwen2", "qwen3", "llama", "granite", "mistral"};

std::string golden_dir(const std::string& arch, const std::string& dt) {
  return std::string(TAILOR_SOURCE_DIR) + "/tests/data/golden/" + arch + "/" + dt;
}

double rel_err(const float* out, const float* ref, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

struct Golden {
  std::shared_ptr<const ModelSpec> spec;
  SafeTensorsArchive ref;
  std::vector<int32_t> prompt, tokens;
  const float* prompt_logits = nullptr;  // [P, V]
  const float* step_logits = nullptr;    // [S, V]
};

Golden load(const std::string& dir) {
  auto spec = load_model_spec(dir);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  auto ref = SafeTensorsArchive::open(dir + "/golden.safetensors");
  EXPECT_TRUE(ref.ok()) << ref.status().message();
  Golden g{std::make_shared<const ModelSpec>(std::move(spec).value()), std::move(ref).value(), {}, {}};
  auto ids = [&](const char* n) {
    const SafeTensor* t = g.ref.find(n);
    const int32_t* p = reinterpret_cast<const int32_t*>(t->data);
    return std::vector<int32_t>(p, p + t->shape.numel());
  };
  g.prompt = ids("prompt_ids");
  g.tokens = ids("tokens");
  g.prompt_logits = reinterpret_cast<const float*>(g.ref.find("prompt_logits")->data);
  g.step_logits = reinterpret_cast<const float*>(g.ref.find("step_logits")->data);
  return g;
}

class GoldenTest : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(GoldenTest, TeacherForcedLogitsMatchHF) {
  const auto [arch, dt] = GetParam();
  const double tol = std::string(dt) == "f32" ? 1e-4 : 2e-2;
  Golden g = load(golden_dir(arch, dt));
  ASSERT_TRUE(g.spec);
  const int V = g.spec->hp.n_vocab;
  RunnerOptions ro;
  ro.n_ctx = 64;
  ro.weight_dtype = g.spec->weights->find("model.embed_tokens.weight")->dtype;  // stored dtype, as run does
  auto runner = make_cpu_runner(g.spec, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().message();

  const int P = int(g.prompt.size());
  std::vector<int32_t> pos(static_cast<size_t>(P));
  for (int i = 0; i < P; ++i) pos[size_t(i)] = i;
  std::vector<float> logits;
  SeqBatchEntry e{0, g.prompt, pos, true};
  ASSERT_TRUE((*runner)->forward({&e, 1}, logits).ok());
  for (int i = 0; i < P; ++i)
    EXPECT_LE(rel_err(&logits[size_t(i) * V], g.prompt_logits + int64_t(i) * V, V), tol)
        << "prompt position " << i;
  EXPECT_LE(rel_err(&logits[size_t(P - 1) * V], g.step_logits, V), tol) << "step 0";

  for (size_t s = 0; s + 1 < g.tokens.size(); ++s) {
    const int32_t p = int32_t(P + s);
    SeqBatchEntry d{0, {&g.tokens[s], 1}, {&p, 1}, false};
    ASSERT_TRUE((*runner)->forward({&d, 1}, logits).ok());
    EXPECT_LE(rel_err(logits.data(), g.step_logits + int64_t(s + 1) * V, V), tol) << "step " << s + 1;
  }
}

class GreedyTest : public ::testing::TestWithParam<const char*> {};

// Token identity is required in f32 (bf16 is checked by logits above).
TEST_P(GreedyTest, FreeRunningGreedyTokensMatchHF) {
  Golden g = load(golden_dir(GetParam(), "f32"));
  const int V = g.spec->hp.n_vocab;
  RunnerOptions ro;
  ro.n_ctx = 64;
  ro.weight_dtype = DType::f32;
  auto runner = make_cpu_runner(g.spec, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().message();
  std::vector<int32_t> pos(g.prompt.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(i);
  std::vector<float> logits;
  SeqBatchEntry e{0, g.prompt, pos, false};
  ASSERT_TRUE((*runner)->forward({&e, 1}, logits).ok());
  std::vector<int32_t> got;
  for (size_t s = 0; s < g.tokens.size(); ++s) {
    int32_t best = 0;
    for (int v = 1; v < V; ++v)
      if (logits[size_t(v)] > logits[size_t(best)]) best = v;
    got.push_back(best);
    const int32_t p = int32_t(g.prompt.size() + s);
    SeqBatchEntry d{0, {&got.back(), 1}, {&p, 1}, false};
    ASSERT_TRUE((*runner)->forward({&d, 1}, logits).ok());
  }
  EXPECT_EQ(got, g.tokens);
}

INSTANTIATE_TEST_SUITE_P(Archs, GoldenTest,
                         ::testing::Combine(::testing::ValuesIn(kArchs), ::testing::Values("f32", "bf16")),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });
INSTANTIATE_TEST_SUITE_P(Archs, GreedyTest, ::testing::ValuesIn(kArchs));

}  // namespace
