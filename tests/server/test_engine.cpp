// The engine alone (no HTTP): batching must not change any request's output, stop strings, cancellation,
// back-pressure, and the small pieces (stop-string matcher, histogram, JSON depth).
#include <gtest/gtest.h>

#include <chrono>

#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/load.h"
#include "engine/stop_strings.h"
#include "server/api.h"
#include "server_test_util.h"

namespace tailor::testing {
namespace {

TEST(StopStrings, HoldsBackPossiblePrefixesAndCutsAtTheStop) {
  StopStringMatcher m({"END", "\n\n"});
  EXPECT_EQ(m.push("Hello E"), "Hello ");  // "E" may start END
  EXPECT_EQ(m.push("N"), "");
  EXPECT_EQ(m.push("X more"), "ENX more");
  EXPECT_EQ(m.push("\n"), "");
  EXPECT_EQ(m.push("tail EN"), "\ntail ");
  EXPECT_EQ(m.push("D after"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, FlushReturnsHeldTextAndEmptyStopsAreIgnored) {
  StopStringMatcher m({"abc", ""});
  EXPECT_EQ(m.push("xab"), "x");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "ab");
  StopStringMatcher none;
  EXPECT_EQ(none.push("anything"), "anything");
}

TEST(StopStrings, SplitAnywhereGivesTheSameText) {
  const std::string text = "one two <stop> three";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    StopStringMatcher m({"<stop>"});
    std::string out = m.push(text.substr(0, cut));
    out += m.push(text.substr(cut));
    out += m.flush();
    EXPECT_EQ(out, "one two ") << cut;
    EXPECT_TRUE(m.stopped());
  }
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0}) h.observe(v);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 16.0);
}

TEST(Api, JsonDepthIsIterative) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto j = OrderedJson::parse(deep);
  EXPECT_EQ(api::json_depth(j), 100000);
  EXPECT_EQ(api::json_depth(OrderedJson::parse("{\"a\": [1, {\"b\": 2}]}")), 3);
  EXPECT_EQ(api::json_depth(OrderedJson(5)), 0);
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadOptions lo;
    lo.runner.n_ctx = 256;
    lo.runner.n_slots = 3;
    lo.device = "cpu";
    lo.progress = false;
    lo.verbose = false;
    lo.need_tokenizer = true;
    auto m = load_model(test_model_dir(), lo);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
    EngineOptions eo;
    eo.max_queue = 4;
    eo.prefill_chunk = 7;  // small: prompts are prefilled over several steps, beside decoding sequences
    auto e = Engine::create(*model_.runner, model_.tokenizer.get(), eo);
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = std::move(e).value();
  }

  static std::vector<int32_t> prompt(int n, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(int32_t((i * 7919 + salt * 104729) % 150000));
    return p;
  }
  static std::string drain(RequestHandle& h, EngineEvent* final) {
    std::string text;
    std::vector<EngineEvent> ev;
    while (!h.next(ev, std::chrono::milliseconds(1000))) {
    }
    for (auto& e : ev) {
      text += e.text;
      if (e.done) *final = e;
    }
    return text;
  }

  LoadedModel model_;
  std::unique_ptr<Engine> engine_;
};

// Six requests of different lengths and samplers through three slots: each one's tokens equal the
// single-sequence generate() loop's with the same settings.
TEST_F(EngineTest, BatchedOutputEqualsSingleSequenceGenerate) {
  struct Case {
    int prompt_len, max_new;
    float temperature;
    uint64_t seed;
  };
  const std::vector<Case> cases = {{5, 20, 0.0f, 1},  {23, 15, 0.9f, 2}, {1, 30, 1.0f, 3},
                                   {40, 10, 0.7f, 4}, {12, 25, 0.0f, 5}, {9, 18, 1.3f, 6}};
  std::vector<EngineRequest> reqs;
  for (size_t i = 0; i < cases.size(); ++i) {
    EngineRequest r;
    r.prompt = prompt(cases[i].prompt_len, int(i));
    r.sampling.temperature = cases[i].temperature;
    r.sampling.seed = cases[i].seed;
    r.sampling.top_k = i % 2 ? 50 : 0;
    r.max_new_tokens = cases[i].max_new;
    r.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  // Submit in two groups (the second joins while the first decodes): 3 slots, queue limit 4.
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<EngineRequest> first(std::make_move_iterator(reqs.begin()),
                                   std::make_move_iterator(reqs.begin() + 3));
  std::vector<EngineRequest> second(std::make_move_iterator(reqs.begin() + 3),
                                    std::make_move_iterator(reqs.end()));
  auto h1 = engine_->submit(std::move(first));
  ASSERT_TRUE(h1.ok()) << h1.status().message();
  auto h2 = engine_->submit(std::move(second));
  ASSERT_TRUE(h2.ok()) << h2.status().message();
  for (auto& h : *h1) handles.push_back(h);
  for (auto& h : *h2) handles.push_back(h);
  std::vector<std::string> texts;
  for (size_t i = 0; i < handles.size(); ++i) {
    EngineEvent f;
    texts.push_back(drain(*handles[i], &f));
    EXPECT_EQ(f.end, RequestEnd::length);
    EXPECT_EQ(f.n_generated, cases[i].max_new);
    EXPECT_EQ(f.n_prompt, cases[i].prompt_len);
  }
  engine_->shutdown();
  EXPECT_GE(engine_->metrics().batch_size.snapshot().sum / engine_->metrics().steps.load(), 1.5)
      << "sequences were not batched";

  for (size_t i = 0; i < cases.size(); ++i) {
    GenerateOptions go;
    go.sampling.temperature = cases[i].temperature;
    go.sampling.seed = cases[i].seed;
    go.sampling.top_k = i % 2 ? 50 : 0;
    go.max_new_tokens = cases[i].max_new;
    go.ignore_eos = true;
    auto p = prompt(cases[i].prompt_len, int(i));
    auto r = generate(*model_.runner, 0, p, go);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(texts[i], model_.tokenizer->decode(r->tokens, true)) << "request " << i;
  }
}

TEST_F(EngineTest, StopStringEndsTheRequest) {
  // Generate once freely, then ask again with a stop string taken from the middle of that output.
  EngineRequest r;
  r.prompt = prompt(6, 9);
  r.sampling.temperature = 0;
  r.max_new_tokens = 40;
  r.ignore_eos = true;
  EngineEvent f;
  auto h = engine_->submit([&] {
    std::vector<EngineRequest> v;
    EngineRequest c = {};
    c.prompt = r.prompt, c.sampling = r.sampling, c.max_new_tokens = r.max_new_tokens, c.ignore_eos = true;
    v.push_back(std::move(c));
    return v;
  }());
  ASSERT_TRUE(h.ok());
  const std::string full = drain(*(*h)[0], &f);
  ASSERT_GT(full.size(), 20u);
  const std::string stop = full.substr(full.size() / 2, 3);
  const std::string expect = full.substr(0, full.find(stop));
  std::vector<EngineRequest> v;
  r.stop_strings = {stop};
  v.push_back(std::move(r));
  auto h2 = engine_->submit(std::move(v));
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(drain(*(*h2)[0], &f), expect);
  EXPECT_EQ(f.end, RequestEnd::stop);
}

TEST_F(EngineTest, RefusesWhatCanNeverRunAndWhenFull) {
  auto one = [](std::vector<int32_t> p, int max_new) {
    std::vector<EngineRequest> v(1);
    v[0].prompt = std::move(p);
    v[0].max_new_tokens = max_new;
    v[0].ignore_eos = true;
    return v;
  };
  auto empty = engine_->submit(one({}, 1));
  EXPECT_EQ(empty.status().code(), ErrorCode::invalid_argument);
  auto too_long = engine_->submit(one(prompt(256, 1), 1));
  EXPECT_EQ(too_long.status().code(), ErrorCode::invalid_argument);
  auto bad_id = engine_->submit(one({1, 2, 999999}, 1));
  EXPECT_EQ(bad_id.status().code(), ErrorCode::invalid_argument);
  // 3 slots + 4 queued fit; beyond that requests are refused, all-or-nothing for a batch. (Each request needs
  // hundreds of steps, so none finishes between these calls.)
  std::vector<std::shared_ptr<RequestHandle>> held;
  auto many = [&](int n, int salt) {
    std::vector<EngineRequest> v;
    for (int i = 0; i < n; ++i) v.push_back(std::move(one(prompt(4, salt + i), 100000)[0]));
    return v;
  };
  auto six = engine_->submit(many(6, 0));
  ASSERT_TRUE(six.ok()) << six.status().message();
  held = *six;
  auto two = engine_->submit(many(2, 10));
  EXPECT_EQ(two.status().code(), ErrorCode::out_of_memory);  // would leave 5 waiting
  auto seventh = engine_->submit(many(1, 20));
  ASSERT_TRUE(seventh.ok()) << seventh.status().message();
  held.push_back((*seventh)[0]);
  auto full = engine_->submit(one(prompt(4, 99), 1));
  EXPECT_EQ(full.status().code(), ErrorCode::out_of_memory);
  EXPECT_EQ(engine_->metrics().requests_rejected.load(), 3u);
  for (auto& h : held) h->cancel();
  for (auto& h : held) {
    EngineEvent f;
    drain(*h, &f);
    EXPECT_EQ(f.end, RequestEnd::cancelled);
  }
  EXPECT_EQ(engine_->snapshot().active, 0);
  EXPECT_EQ(engine_->snapshot().queue_depth, 0);
  EXPECT_TRUE(engine_->submit(one(prompt(4, 1), 1)).ok());
}

// The CPU runner presented as a runner that samples on its device (the default forward_sample): the engine's
// and generate()'s device-sampling paths, without a GPU.
class DeviceSamplingCpu final : public Runner {
 public:
  explicit DeviceSamplingCpu(Runner& r) : r_(r) {}
  Status forward(std::span<const SeqBatchEntry> b, std::vector<float>& logits) override {
    ++n_forward;
    return r_.forward(b, logits);
  }
  Status forward_sample(std::span<const SeqBatchEntry> b, std::span<const DeviceSampling> p,
                        std::vector<int32_t>& ids) override {
    ++n_sample;
    return Runner::forward_sample(b, p, ids);  // counts one forward too
  }
  bool samples_on_device() const override { return true; }
  const HParams& hparams() const override { return r_.hparams(); }
  const RunnerOptions& options() const override { return r_.options(); }
  std::string describe() const override { return "device-sampling " + r_.describe(); }
  int n_forward = 0, n_sample = 0;

 private:
  Runner& r_;
};

// Allows only ids that are multiples of 3 below 3000 (the mask reaches the device path as DeviceSampling);
// finished after 12 tokens.
class EveryThird final : public TokenConstraint {
 public:
  void fill_mask(std::span<uint32_t> mask) override {
    for (int32_t i = 0; i < 3000; i += 3) mask[size_t(i) >> 5] |= 1u << (i & 31);
  }
  Status accept(int32_t token) override {
    if (token % 3 != 0 || token >= 3000) return invalid_argument(cat("token ", token, " is not allowed"));
    ++n_;
    return {};
  }
  bool finished() const override { return n_ >= 12; }

 private:
  int n_ = 0;
};

// Device path: batched requests equal generate() on the same path; a request with penalties (CPU only) in
// the batch moves the step to logits, yet the others' tokens stay the same (they draw with the same
// semantics on the CPU), and it equals generate() on the plain CPU path. Greedy is the same on every path.
TEST_F(EngineTest, DeviceSamplingPathMatchesGenerateAndIgnoresBatchMates) {
  engine_->shutdown();
  DeviceSamplingCpu dev(*model_.runner);
  EngineOptions eo;
  eo.max_queue = 8;
  eo.prefill_chunk = 7;
  struct Case {
    int prompt_len, max_new;
    float temperature;
    int top_k;
    float top_p;
    bool penalty;
  };
  const std::vector<Case> cases = {{5, 20, 0.0f, 0, 1.0f, false},
                                   {23, 15, 0.9f, 40, 0.9f, false},
                                   {1, 30, 1.0f, 0, 1.0f, false},
                                   {12, 25, 1.3f, 0, 0.95f, false},
                                   {9, 18, 0.8f, 0, 1.0f, true}};
  auto request = [&](size_t i) {
    EngineRequest r;
    r.prompt = prompt(cases[i].prompt_len, int(i));
    r.sampling.temperature = cases[i].temperature;
    r.sampling.top_k = cases[i].top_k;
    r.sampling.top_p = cases[i].top_p;
    r.sampling.seed = 100 + i;
    if (cases[i].penalty) r.sampling.repetition_penalty = 1.3f;
    r.max_new_tokens = cases[i].max_new;
    r.ignore_eos = true;
    return r;
  };
  auto gen_opts = [&](size_t i) {
    GenerateOptions go;
    go.sampling = request(i).sampling;
    go.max_new_tokens = cases[i].max_new;
    go.ignore_eos = true;
    return go;
  };
  auto run_engine = [&](const std::vector<size_t>& which) {
    auto e = Engine::create(dev, model_.tokenizer.get(), eo);
    EXPECT_TRUE(e.ok()) << e.status().message();
    std::vector<EngineRequest> reqs;
    for (size_t i : which) reqs.push_back(request(i));
    auto h = (*e)->submit(std::move(reqs));
    EXPECT_TRUE(h.ok()) << h.status().message();
    std::vector<std::string> texts;
    for (auto& handle : *h) {
      EngineEvent f;
      texts.push_back(drain(*handle, &f));
      EXPECT_EQ(f.end, RequestEnd::length);
    }
    (*e)->shutdown();
    return texts;
  };
  const auto without_penalty = run_engine({0, 1, 2, 3});
  const int sampled_steps = dev.n_sample;
  EXPECT_GT(sampled_steps, 0);
  EXPECT_EQ(dev.n_forward, dev.n_sample) << "every step drew on the device";
  const auto with_penalty = run_engine({0, 1, 2, 3, 4});
  EXPECT_GT(dev.n_forward - dev.n_sample, 0) << "the penalty request needs logits";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(with_penalty[i], without_penalty[i]) << "request " << i << " changed with its batch mates";
    auto p = prompt(cases[i].prompt_len, int(i));
    auto r = generate(dev, 0, p, gen_opts(i));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(without_penalty[i], model_.tokenizer->decode(r->tokens, true)) << "request " << i;
  }
  auto p4 = prompt(cases[4].prompt_len, 4);
  auto r4 = generate(*model_.runner, 0, p4, gen_opts(4));
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(with_penalty[4], model_.tokenizer->decode(r4->tokens, true)) << "penalty request: the CPU path";
  auto greedy_cpu = generate(*model_.runner, 0, prompt(5, 0), gen_opts(0));
  ASSERT_TRUE(greedy_cpu.ok());
  EXPECT_EQ(without_penalty[0], model_.tokenizer->decode(greedy_cpu->tokens, true)) << "greedy: any path";
}

// generate() on the device path passes the constraint's mask with each step: every token is allowed, and
// greedy picks what the CPU path picks.
TEST_F(EngineTest, DeviceSamplingPathAppliesTheConstraintMask) {
  engine_->shutdown();
  DeviceSamplingCpu dev(*model_.runner);
  for (float t : {0.0f, 1.0f}) {
    GenerateOptions go;
    go.sampling.temperature = t;
    go.max_new_tokens = 40;
    go.ignore_eos = true;
    const auto p = prompt(6, 3);
    EveryThird c1, c2;
    auto on_dev = generate(dev, 0, p, go, &c1);
    ASSERT_TRUE(on_dev.ok()) << on_dev.status().message();
    EXPECT_EQ(on_dev->tokens.size(), 12u);
    EXPECT_EQ(on_dev->finish, FinishReason::stop);
    for (int32_t id : on_dev->tokens) EXPECT_TRUE(id % 3 == 0 && id < 3000) << id;
    if (t == 0.0f) {
      auto on_cpu = generate(*model_.runner, 0, p, go, &c2);
      ASSERT_TRUE(on_cpu.ok());
      EXPECT_EQ(on_dev->tokens, on_cpu->tokens);
    }
  }
  EXPECT_EQ(dev.n_forward, dev.n_sample);
}

TEST_F(EngineTest, ShutdownEndsEverything) {
  std::vector<std::shared_ptr<RequestHandle>> held;
  for (int i = 0; i < 5; ++i) {
    std::vector<EngineRequest> v(1);
    v[0].prompt = prompt(3, i);
    v[0].max_new_tokens = 100000;
    v[0].ignore_eos = true;
    auto h = engine_->submit(std::move(v));
    ASSERT_TRUE(h.ok());
    held.push_back((*h)[0]);
  }
  engine_->shutdown();
  for (auto& h : held) {
    EngineEvent f;
    drain(*h, &f);
    EXPECT_TRUE(f.end == RequestEnd::cancelled || f.end == RequestEnd::length);
  }
  std::vector<EngineRequest> v(1);
  v[0].prompt = prompt(3, 1);
  EXPECT_EQ(engine_->submit(std::move(v)).status().code(), ErrorCode::cancelled);
}

}  // namespace
}  // namespace tailor::testing
