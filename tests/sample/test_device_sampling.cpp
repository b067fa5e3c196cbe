// The stateless chain behind Runner::forward_sample and the CUDA sampler: sample_with_uniform() (given u,
// kept tokens scanned in id order) and sample_row() (u from Philox(seed, step)). Stratified u values turn the
// distribution check into an exact count: token i takes the u interval of its probability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/philox.h"
#include "sample/device_sampling.h"

namespace tailor {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplerParams params(float t, int k = 0, float p = 1.0f, float min_p = 0.0f) {
  SamplerParams s;
  s.temperature = t;
  s.top_k = k;
  s.top_p = p;
  s.min_p = min_p;
  return s;
}

std::vector<float> random_logits(size_t n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, sd);
  std::vector<float> l(n);
  for (auto& x : l) x = nd(rng);
  return l;
}

// The documented chain with full sorts and exact exp in double: the kept tokens' probabilities.
std::map<int32_t, double> reference(const std::vector<float>& l, const SamplerParams& p) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] > -kInf) order.push_back(int32_t(i));
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
  if (p.top_k > 0 && size_t(p.top_k) < order.size()) order.resize(size_t(p.top_k));
  const double mx = l[size_t(order[0])];
  std::map<int32_t, double> w;
  double z = 0;
  for (int32_t i : order) z += w[i] = std::exp((double(l[size_t(i)]) - mx) / p.temperature);
  std::map<int32_t, double> out;
  double cum = 0;
  for (int32_t i : order) {
    if (w[i] >= p.min_p) out[i] = w[i];
    cum += w[i];
    if (p.top_p < 1 && cum >= p.top_p * z) break;
  }
  double kept = 0;
  for (auto& [i, x] : out) kept += x;
  for (auto& [i, x] : out) x /= kept;
  return out;
}

// u = (j + 0.5) / n for j < n: each token is picked for the u values in its interval, so its count is within
// one of n x its probability.
TEST(SampleWithUniform, StratifiedDrawsMatchProbabilitiesExactly) {
  const auto l = random_logits(5000, 3, 1.5f);
  for (const SamplerParams& p :
       {params(1.0f), params(0.7f, 40), params(1.0f, 0, 0.9f), params(1.3f, 0, 1.0f, 0.05f),
        params(0.8f, 40, 0.9f, 0.05f), params(1.0f, 0, 0.5f, 0.2f)}) {
    SCOPED_TRACE(testing::Message() << "T=" << p.temperature << " k=" << p.top_k << " p=" << p.top_p
                                    << " min_p=" << p.min_p);
    const auto ref = reference(l, p);
    const int n = 20000;
    std::map<int32_t, int> counts;
    std::vector<float> work;
    for (int j = 0; j < n; ++j) {
      work = l;
      counts[sample_with_uniform(p, work, {}, (j + 0.5) / n)]++;
    }
    for (auto& [id, c] : counts) ASSERT_TRUE(ref.count(id)) << "token " << id << " is not in the kept set";
    for (auto& [id, q] : ref) {
      const double c = counts.count(id) ? counts.at(id) : 0;
      EXPECT_NEAR(c, q * n, 1.0 + 1e-5 * n) << "token " << id;
    }
  }
}

// The kept tokens are scanned in id order: u near 0 picks the lowest kept id, u near 1 the highest.
TEST(SampleWithUniform, ScansKeptTokensInIdOrder) {
  const std::vector<float> l = {0.0f, 5.0f, 1.0f, 4.0f, -kInf, 3.0f, 4.5f};
  const SamplerParams p = params(1.0f, 3);  // keeps {1, 6, 3}
  auto pick = [&](double u) {
    auto w = l;
    return sample_with_uniform(p, w, {}, u);
  };
  EXPECT_EQ(pick(0.0), 1);
  EXPECT_EQ(pick(0.999999), 6);
  // Cumulative in id order: w1 = 1, w3 = e^-1, w6 = e^-0.5.
  const double z = 1 + std::exp(-1.0) + std::exp(-0.5);
  EXPECT_EQ(pick(0.99 / z), 1);
  EXPECT_EQ(pick(1.01 / z), 3);
  EXPECT_EQ(pick((1 + std::exp(-1.0)) / z + 1e-6), 6);
}

TEST(SampleWithUniform, GreedyMaskAndNothingDrawable) {
  const auto l = random_logits(1000, 5, 2.0f);
  auto w = l;
  EXPECT_EQ(sample_with_uniform(params(0.0f, 5, 0.5f), w, {}, 0.3), argmax(l));
  std::vector<uint32_t> mask((1000 + 31) / 32, 0u);
  mask[3] = 1u << 7;  // only token 103
  w = l;
  EXPECT_EQ(sample_with_uniform(params(1.0f), w, mask, 0.9), 103);
  w = l;
  EXPECT_EQ(sample_with_uniform(params(0.0f), w, mask, 0.9), 103);
  std::fill(mask.begin(), mask.end(), 0u);
  w = l;
  EXPECT_EQ(sample_with_uniform(params(1.0f, 3, 0.9f), w, mask, 0.5), -1);
}

TEST(SampleRow, SeedAndStepFixTheToken) {
  const auto l = random_logits(3000, 8, 1.0f);
  DeviceSampling d = device_sampling(params(1.0f, 0, 0.95f), 0);
  d.seed = 77;
  std::vector<int32_t> a, b;
  for (uint64_t step = 0; step < 200; ++step) {
    d.step = step;
    auto w = l;
    a.push_back(sample_row(d, w));
    w = l;
    b.push_back(sample_row(d, w));
    w = l;
    EXPECT_EQ(a.back(), sample_with_uniform(sampler_params(d), w, {}, philox_uniform(77, step)));
  }
  EXPECT_EQ(a, b);
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 50u);
}

TEST(SampleRow, WhatFitsTheDevice) {
  EXPECT_TRUE(fits_device_sampling(params(0.7f, 40, 0.9f, 0.05f)));
  SamplerParams p = params(1.0f);
  p.repetition_penalty = 1.1f;
  EXPECT_FALSE(fits_device_sampling(p));
  p.penalty_last_n = 0;  // penalties off
  EXPECT_TRUE(fits_device_sampling(p));
  p = params(1.0f);
  p.presence_penalty = 0.5f;
  EXPECT_FALSE(fits_device_sampling(p));
  p = params(1.0f);
  p.frequency_penalty = -0.5f;
  EXPECT_FALSE(fits_device_sampling(p));
  p = params(0.6f, 7, 0.8f, 0.1f);
  p.seed = 99;
  const std::vector<uint32_t> mask(4, 1u);
  const DeviceSampling d = device_sampling(p, 12, mask);
  EXPECT_EQ(d.step, 12u);
  EXPECT_EQ(d.seed, 99u);
  EXPECT_EQ(d.mask.data(), mask.data());
  const SamplerParams back = sampler_params(d);
  EXPECT_EQ(back.temperature, p.temperature);
  EXPECT_EQ(back.top_k, p.top_k);
  EXPECT_EQ(back.top_p, p.top_p);
  EXPECT_EQ(back.min_p, p.min_p);
}

}  // namespace
}  // namespace tailor
