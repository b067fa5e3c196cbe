// Sampler chain: determinism, greedy, each filter's support and distribution on known logits, penalties,
// the grammar-mask stage, validate(), NaN handling, and no allocation per call.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <new>
#include <numeric>
#include <random>
#include <set>

#include "sample/sampler.h"

// Counts heap allocations so the test can check that sample() allocates nothing in steady state. Not under
// AddressSanitizer, which owns operator new itself (that test then skips, saying why).
#if defined(__SANITIZE_ADDRESS__)
#define TAILOR_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAILOR_COUNT_ALLOCS 0
#endif
#endif
#ifndef TAILOR_COUNT_ALLOCS
#define TAILOR_COUNT_ALLOCS 1
#endif
static std::atomic<long> g_allocs{0};
#if TAILOR_COUNT_ALLOCS
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // the replaced operators below pair malloc/free
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
#endif

namespace tailor {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplerParams params(float temperature, int top_k = 0, float top_p = 1, float min_p = 0, uint64_t seed = 42) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// Logits whose softmax at T = 1 is exactly `probs` (up to a constant shift).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -kInf);
  return l;
}

// Draws n tokens (fresh copy of the logits each time: sample() may modify them) and counts them.
std::map<int32_t, int> draw(const SamplerParams& p, const std::vector<float>& logits, int n,
                            TokenMask mask = {}) {
  Sampler s(p);
  std::map<int32_t, int> counts;
  std::vector<float> work;
  for (int i = 0; i < n; ++i) {
    work = logits;
    counts[s.sample(work, {}, mask)]++;
  }
  return counts;
}

// Chi-square of observed counts against expected probabilities (unnormalised weights, renormalised here).
// Every observed id must have a positive expected weight. Ids are pooled (in order of weight) into cells
// expecting >= 20 draws, so the statistic is meaningful even when most ids are rare. With df degrees of
// freedom it has mean df and sd sqrt(2 df); the bound is ~6 sd out: a correct sampler essentially never
// fails it (and the seed is fixed), while a wrong distribution at these sample sizes lands far beyond.
void expect_distribution(const std::map<int32_t, int>& counts, const std::map<int32_t, double>& weights) {
  double z = 0;
  int n = 0;
  for (auto& [id, w] : weights) z += w;
  for (auto& [id, c] : counts) {
    n += c;
    ASSERT_TRUE(weights.count(id) && weights.at(id) > 0)
        << "token " << id << " drawn " << c << " times but is not allowed";
  }
  std::vector<std::pair<double, int32_t>> by_weight;
  for (auto& [id, w] : weights) by_weight.push_back({-w, id});
  std::sort(by_weight.begin(), by_weight.end());
  double chi2 = 0, e = 0, o = 0;
  int cells = 0;
  for (size_t i = 0; i < by_weight.size(); ++i) {
    const int32_t id = by_weight[i].second;
    e += n * weights.at(id) / z;
    o += counts.count(id) ? counts.at(id) : 0;
    if (e >= 20 || i + 1 == by_weight.size()) {
      chi2 += (o - e) * (o - e) / e;
      e = o = 0;
      ++cells;
    }
  }
  const double df = std::max(cells - 1, 1);
  EXPECT_LT(chi2, df + 6 * std::sqrt(2 * df) + 10)
      << "frequencies do not match the probabilities (" << cells << " cells)";
}

std::map<int32_t, double> softmax_over(const std::vector<float>& logits, std::vector<int32_t> ids,
                                       double t = 1) {
  std::map<int32_t, double> w;
  double mx = -1e300;
  for (int32_t i : ids) mx = std::max(mx, double(logits[size_t(i)]));
  for (int32_t i : ids) w[i] = std::exp((double(logits[size_t(i)]) - mx) / t);
  return w;
}

std::vector<float> random_logits(size_t n, uint32_t seed, float sd = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, sd);
  std::vector<float> l(n);
  for (auto& x : l) x = nd(rng);
  return l;
}

// ---- determinism ----

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  auto run = [](uint64_t seed) {
    Sampler s(params(1.0f, 40, 0.95f, 0.01f, seed));
    std::vector<int32_t> out;
    for (uint32_t step = 0; step < 200; ++step) {
      auto l = random_logits(5000, step, 1.5f);
      out.push_back(s.sample(l, out));
    }
    return out;
  };
  const auto a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 20u);  // it really samples, not argmax
}

// ---- greedy ----

TEST(Sampler, GreedyIsExactArgmaxLowestIdOnTies) {
  auto l = random_logits(151936, 3);
  const int32_t expect = int32_t(std::max_element(l.begin(), l.end()) - l.begin());  // first max
  for (uint64_t seed : {1u, 2u, 3u}) {
    Sampler s(params(0.0f, 5, 0.5f, 0.1f, seed));  // filters and seed are irrelevant when greedy
    auto w = l;
    EXPECT_EQ(s.sample(w, {}), expect);
  }
  std::vector<float> ties = {1, 3, 2, 3, 3, -1};
  Sampler s(params(0.0f));
  for (int i = 0; i < 3; ++i) {
    auto w = ties;
    EXPECT_EQ(s.sample(w, {}), 1);
  }
  EXPECT_EQ(argmax(ties), 1);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, -kInf}), -1);
  EXPECT_EQ(argmax(std::vector<float>{}), -1);
  EXPECT_EQ(argmax(std::vector<float>{1, kInf, kInf}), 1);
}

TEST(Sampler, GreedyNaN) {
  std::vector<float> l = {1, kNaN, 5, kNaN, 2};
  EXPECT_EQ(argmax(l), 2);
  std::vector<float> nans(100, kNaN);
  Sampler s(params(0.0f));
  auto w = nans;
  EXPECT_EQ(s.sample(w, {}), -1);
  l = {kNaN, 0.5f, kNaN};
  EXPECT_EQ(argmax(l), 1);  // a leading NaN must not poison the comparison
}

// ---- temperature, top-k, top-p, min-p: support and frequencies ----

TEST(Sampler, TemperatureOnly) {
  const std::vector<float> l = {1.0f, 0.0f, -1.0f, -kInf};
  for (float t : {0.5f, 1.0f, 2.0f}) {
    auto c = draw(params(t), l, 20000);
    expect_distribution(c, softmax_over(l, {0, 1, 2}, t));
  }
}

TEST(Sampler, TopK) {
  const std::vector<float> l = {0.5f, 3.0f, 2.0f, 2.5f, 1.0f, -1.0f};
  auto c = draw(params(1.0f, 3), l, 20000);
  expect_distribution(c, softmax_over(l, {1, 2, 3}));
  // Ties at the boundary go to the lowest ids: {1} then two of the tied {0, 2, 4}.
  const std::vector<float> tied = {2.0f, 5.0f, 2.0f, 0.0f, 2.0f};
  c = draw(params(1.0f, 3), tied, 5000);
  expect_distribution(c, softmax_over(tied, {0, 1, 2}));
  // k >= vocabulary: off.
  c = draw(params(1.0f, 100), l, 20000);
  expect_distribution(c, softmax_over(l, {0, 1, 2, 3, 4, 5}));
}

TEST(Sampler, TopP) {
  const std::vector<double> probs = {0.5, 0.25, 0.15, 0.07, 0.03};
  const auto l = logits_of(probs);
  // cumulative 0.5, 0.75, 0.90, 0.97, 1.0
  expect_distribution(draw(params(1.0f, 0, 0.7f), l, 20000), {{0, 0.5}, {1, 0.25}});
  expect_distribution(draw(params(1.0f, 0, 0.8f), l, 20000), {{0, 0.5}, {1, 0.25}, {2, 0.15}});
  expect_distribution(draw(params(1.0f, 0, 0.95f), l, 20000), {{0, 0.5}, {1, 0.25}, {2, 0.15}, {3, 0.07}});
  auto c = draw(params(1.0f, 0, 1e-6f), l, 500);  // keeps at least one token
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.begin()->first, 0);
}

// A flat tail that holds much of the mass forces the nucleus past the first cut; ties among equal
// probabilities must resolve to the lowest ids.
TEST(Sampler, TopPFlatTailLargeVocab) {
  const size_t n = 20000;
  std::vector<float> l(n, -30.0f);  // negligible background
  const int32_t top = 15000;
  l[top] = 0.0f;
  for (int32_t i = 1000; i < 2000; ++i) l[size_t(i)] = std::log(1e-3f);  // 1000 x 1e-3: mass 1, like the top
  // Z ~= 2; top_p 0.90025 -> target 1.8005: the top (1.0) plus the 801 lowest-id tail tokens (1.801).
  auto c = draw(params(1.0f, 0, 0.90025f), l, 6000);
  std::map<int32_t, double> w{{top, 1.0}};
  for (int32_t i = 1000; i < 1801; ++i) w[i] = 1e-3;
  expect_distribution(c, w);
  EXPECT_GT(c.size(), 500u);
}

TEST(Sampler, MinP) {
  const std::vector<double> probs = {0.5, 0.25, 0.15, 0.07, 0.03};
  const auto l = logits_of(probs);
  expect_distribution(draw(params(1.0f, 0, 1.0f, 0.2f), l, 20000), {{0, 0.5}, {1, 0.25}, {2, 0.15}});
  expect_distribution(draw(params(1.0f, 0, 1.0f, 0.45f), l, 20000), {{0, 0.5}, {1, 0.25}});
  auto c = draw(params(1.0f, 0, 1.0f, 1.0f), l, 500);
  EXPECT_EQ(c.size(), 1u);
  // min-p is relative to the max probability after temperature: at T = 2, p_i/p_max = sqrt of the T=1
  // ratio, so 0.15/0.5 -> 0.548 and 0.07/0.5 -> 0.374 both pass min_p 0.35; 0.03/0.5 -> 0.245 does not.
  expect_distribution(draw(params(2.0f, 0, 1.0f, 0.35f), l, 20000), softmax_over(l, {0, 1, 2, 3}, 2.0));
}

TEST(Sampler, StagesComposeInOrder) {
  const auto l = logits_of({0.4, 0.3, 0.2, 0.1});
  // Over the full vocabulary top_p 0.5 needs {0, 1}; after top-k 2 the renormalised p0 = 4/7 >= 0.5: {0}.
  auto c = draw(params(1.0f, 2, 0.5f), l, 2000);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.begin()->first, 0);
  expect_distribution(draw(params(1.0f, 0, 0.5f), l, 20000), {{0, 0.4}, {1, 0.3}});
  // top-p then min-p: nucleus 0.95 = {0,1,2,3}; min_p 0.4 of p_max 0.4 = 0.16 removes 3.
  expect_distribution(draw(params(1.0f, 0, 0.95f, 0.4f), l, 20000), {{0, 0.4}, {1, 0.3}, {2, 0.2}});
  expect_distribution(draw(params(1.0f, 3, 0.95f, 0.6f), l, 20000), {{0, 0.4}, {1, 0.3}});
}

// Random logits over a real-sized vocabulary against a straightforward reference of the documented
// semantics (full sort in double precision).
TEST(Sampler, MatchesReferenceOnRandomLogits) {
  struct Case {
    float t;
    int k;
    float p, min_p;
  };
  for (const Case& cs : {Case{0.7f, 50, 0.8f, 0.02f}, Case{1.0f, 0, 0.9f, 0.0f}, Case{1.3f, 0, 1.0f, 0.05f},
                         Case{0.8f, 20, 1.0f, 0.0f}, Case{1.0f, 0, 0.5f, 0.1f}, Case{0.3f, 0, 0.9f, 0.0f},
                         Case{0.6f, 0, 0.6f, 0.001f}, Case{2.0f, 300, 0.7f, 0.0f}}) {
    const auto l = random_logits(16000, 11, 1.5f);
    std::vector<int32_t> order(l.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
    if (cs.k) order.resize(size_t(cs.k));
    auto w = softmax_over(l, order, cs.t);
    double z = 0;
    for (int32_t i : order) z += w[i];
    std::vector<int32_t> keep;
    double cum = 0;
    for (int32_t i : order) {
      keep.push_back(i);
      cum += w[i];
      if (cs.p < 1 && cum >= cs.p * z) break;
    }
    std::map<int32_t, double> allowed;
    for (int32_t i : keep)
      if (w[i] >= cs.min_p * w[order[0]]) allowed[i] = w[i];
    SCOPED_TRACE(testing::Message() << "T=" << cs.t << " k=" << cs.k << " p=" << cs.p << " min_p=" << cs.min_p
                                    << " allowed=" << allowed.size());
    expect_distribution(draw(params(cs.t, cs.k, cs.p, cs.min_p, 5), l, 6000), allowed);
  }
}

// ---- NaN / inf ----

TEST(Sampler, NaNAndInfLogits) {
  std::vector<float> l = {kNaN, 1.0f, kNaN, 0.0f};
  expect_distribution(draw(params(1.0f), l, 10000), softmax_over(l, {1, 3}));
  expect_distribution(draw(params(1.0f, 1), l, 1000), {{1, 1.0}});
  expect_distribution(draw(params(1.0f, 0, 0.9f), l, 10000), softmax_over(l, {1, 3}));
  std::vector<float> nans(1000, kNaN);
  for (auto p : {params(1.0f), params(1.0f, 5), params(1.0f, 0, 0.9f), params(1.0f, 0, 1, 0.1f)})
    EXPECT_EQ(draw(p, nans, 10).begin()->first, -1);
  std::vector<float> inf = {0.0f, kInf, 3.0f, kInf};
  expect_distribution(draw(params(1.0f), inf, 2000), {{1, 1.0}, {3, 1.0}});
  // Tiny and huge temperatures neither hang nor produce NaN weights.
  expect_distribution(draw(params(1e-30f), {1.0f, 2.0f, 0.0f}, 200), {{1, 1.0}});
  auto c = draw(params(1e30f), {1.0f, 2.0f, 0.0f}, 9000);
  expect_distribution(c, {{0, 1.0}, {1, 1.0}, {2, 1.0}});
}

// ---- penalties ----

TEST(Sampler, PenaltiesOnKnownValues) {
  SamplerParams p = params(0.0f);
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.penalty_last_n = -1;
  const std::vector<int32_t> history = {0, 1, 0, 3, 7, -1};  // 7 and -1 are outside the vocabulary
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f};
  apply_penalties(l, history, p);
  EXPECT_FLOAT_EQ(l[0], 2.0f / 2 - 0.5f - 2 * 0.25f);  // seen twice
  EXPECT_FLOAT_EQ(l[1], -2.0f * 2 - 0.5f - 0.25f);     // negative logits grow more negative
  EXPECT_FLOAT_EQ(l[2], 1.0f);                         // never seen
  EXPECT_FLOAT_EQ(l[3], 0.5f / 2 - 0.5f - 0.25f);
  // Only the last 3 tokens {3, 7, -1} count.
  p.penalty_last_n = 3;
  l = {2.0f, -2.0f, 1.0f, 0.5f};
  apply_penalties(l, history, p);
  EXPECT_EQ(l, (std::vector<float>{2.0f, -2.0f, 1.0f, 0.5f / 2 - 0.75f}));
  p.penalty_last_n = 0;
  l = {2.0f, -2.0f, 1.0f, 0.5f};
  apply_penalties(l, history, p);
  EXPECT_EQ(l, (std::vector<float>{2.0f, -2.0f, 1.0f, 0.5f}));
  // Through the sampler: greedy would repeat token 0 without the penalty.
  p.penalty_last_n = 64;
  p.presence_penalty = p.frequency_penalty = 0;
  Sampler s(p);
  std::vector<float> w = {2.0f, 1.5f, 0.0f};
  const std::vector<int32_t> h = {0};
  EXPECT_EQ(s.sample(w, h), 1);  // 2/2 = 1 < 1.5
}

// ---- grammar mask stage ----

TEST(Sampler, MaskStage) {
  const std::vector<float> l = {
      5.0f, 1.0f, 2.0f, 4.0f, 0.0f, 1.5f, 3.0f, 0.0f, 9.0f, 1.0f, 0.0f, 0.0f,
      0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
      0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 10.0f};  // 35 tokens: 2 mask words
  std::vector<uint32_t> mask(2, 0);
  mask[0] = (1u << 2) | (1u << 5);
  EXPECT_TRUE(mask_allows(mask, 2));
  EXPECT_FALSE(mask_allows(mask, 8));
  EXPECT_EQ(argmax(l, mask), 2);
  auto w = l;
  Sampler g(params(0.0f));
  EXPECT_EQ(g.sample(w, {}, mask), 2);
  expect_distribution(draw(params(1.0f), l, 10000, mask), softmax_over(l, {2, 5}));
  expect_distribution(draw(params(1.0f, 0, 0.99f, 0.0f), l, 10000, mask), softmax_over(l, {2, 5}));
  mask[1] = 1u << 2;  // token 34
  expect_distribution(draw(params(1.0f, 1), l, 100, mask), {{34, 1.0}});
  // Nothing allowed -> -1, greedy or not.
  std::vector<uint32_t> none(2, 0);
  EXPECT_EQ(argmax(l, none), -1);
  EXPECT_EQ(draw(params(1.0f, 3, 0.9f), l, 5, none).begin()->first, -1);
  w = l;
  EXPECT_EQ(g.sample(w, {}, none), -1);
  // Allowed tokens with -inf logits are not drawable either.
  std::vector<float> l2 = l;
  l2[2] = l2[5] = -kInf;
  mask[1] = 0;
  EXPECT_EQ(draw(params(1.0f), l2, 5, mask).begin()->first, -1);
  // A mask shorter than the vocabulary allows nothing past its end.
  std::vector<uint32_t> short_mask(1, 0xffffffffu);
  EXPECT_EQ(argmax(l, short_mask), 8);
  EXPECT_EQ(draw(params(1.0f, 1), l, 10, short_mask).begin()->first, 8);
}

// Allowed tokens counted on both paths of the mask walk: a whole allowed word (vector lanes) and partial
// words (one by one). Equal counts on the two paths once cancelled out and made sample() return -1.
TEST(Sampler, MaskCountsWholeAndPartialWords) {
  std::vector<float> l(96, 0.0f);
  const std::vector<uint32_t> mask = {0xffffffffu, 0xaaaaaaaau, 0x0000ffffu};  // 32 + 16 + 16 allowed
  std::vector<int32_t> allowed;
  for (int32_t i = 0; i < 96; ++i)
    if (mask_allows(mask, i)) allowed.push_back(i);
  ASSERT_EQ(allowed.size(), 64u);
  l[size_t(allowed.back())] = -0.5f;  // the one token top-k 63 must drop
  expect_distribution(draw(params(1.0f), l, 6000, mask), softmax_over(l, allowed));
  allowed.pop_back();
  expect_distribution(draw(params(1.0f, 63), l, 6000, mask), softmax_over(l, allowed));
}

// ---- validate ----

TEST(Sampler, Validate) {
  EXPECT_TRUE(validate(SamplerParams{}).ok());
  EXPECT_TRUE(validate(params(0.0f, 0, 1.0f, 1.0f)).ok());
  auto bad = [](auto mutate, const char* field) {
    SamplerParams p;
    mutate(p);
    const Status st = validate(p);
    EXPECT_EQ(st.code(), ErrorCode::invalid_argument) << field;
    EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
  };
  bad([](SamplerParams& p) { p.temperature = -0.1f; }, "temperature");
  bad([](SamplerParams& p) { p.temperature = kNaN; }, "temperature");
  bad([](SamplerParams& p) { p.temperature = kInf; }, "temperature");
  bad([](SamplerParams& p) { p.top_k = -1; }, "top_k");
  bad([](SamplerParams& p) { p.top_p = 0.0f; }, "top_p");
  bad([](SamplerParams& p) { p.top_p = 1.01f; }, "top_p");
  bad([](SamplerParams& p) { p.top_p = kNaN; }, "top_p");
  bad([](SamplerParams& p) { p.min_p = -0.01f; }, "min_p");
  bad([](SamplerParams& p) { p.min_p = 1.5f; }, "min_p");
  bad([](SamplerParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty");
  bad([](SamplerParams& p) { p.repetition_penalty = kInf; }, "repetition_penalty");
  bad([](SamplerParams& p) { p.presence_penalty = kNaN; }, "presence_penalty");
  bad([](SamplerParams& p) { p.frequency_penalty = -kInf; }, "frequency_penalty");
  bad([](SamplerParams& p) { p.penalty_last_n = -2; }, "penalty_last_n");
  SamplerParams p;
  p.top_p = 0.0f;
  EXPECT_NE(validate(p).message().find("(0, 1]"), std::string::npos);  // the range is named
}

// ---- steady state allocates nothing ----

TEST(Sampler, NoAllocationAfterFirstCall) {
  if (!TAILOR_COUNT_ALLOCS) GTEST_SKIP() << "allocation counting is off under AddressSanitizer";
  const auto base = random_logits(151936, 9);
  for (auto p : {params(0.8f), params(0.8f, 40), params(0.8f, 0, 0.9f), params(0.8f, 40, 0.95f, 0.05f),
                 params(1.0f, 0, 1.0f, 0.05f), params(0.0f)}) {
    p.repetition_penalty = 1.1f;
    p.frequency_penalty = 0.1f;
    Sampler s(p);
    std::vector<int32_t> hist(100, 7);
    std::vector<float> w = base;
    s.sample(w, hist);  // first call may size the scratch
    const long before = g_allocs.load();
    for (int i = 0; i < 5; ++i) {
      std::copy(base.begin(), base.end(), w.begin());
      hist[size_t(i)] = s.sample(w, hist);
    }
    EXPECT_EQ(g_allocs.load() - before, 0) << "T=" << p.temperature << " k=" << p.top_k << " p=" << p.top_p;
  }
}

}  // namespace
}  // namespace tailor
