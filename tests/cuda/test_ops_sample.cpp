// The GPU sampler (src/backend/cuda/sample.cuh) against the CPU: greedy and top-k 1 are the argmax; the
// frequencies of 20k draws match the probabilities of the documented chain (chi-square); masked tokens are
// never drawn; (seed, step) fixes the token; and each row's token equals sample_row()'s on the CPU for the
// same (seed, step), for batches of rows with different parameters, ties and edge cases. Fresh random logits
// each run (the seed is in the failure messages).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "backend/cuda/sample.cuh"
#include "backend/cuda/sample_params.h"
#include "cuda_test_util.h"
#include "sample/device_sampling.h"
#include "sample/sampler_kernels.h"

using namespace tailor;
using namespace tailor::cuda_test;

namespace {

constexpr int64_t kQwenVocab = 151936;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

DeviceSampling params(float t, int k = 0, float p = 1.0f, float min_p = 0.0f, uint64_t seed = 7) {
  DeviceSampling d;
  d.temperature = t;
  d.top_k = k;
  d.top_p = p;
  d.min_p = min_p;
  d.seed = seed;
  return d;
}

// Runs the GPU sampler on host rows [n_rows, V] (one mask per row, or none) and returns the ids. in_place:
// the logits buffer is also the work buffer.
std::vector<int32_t> gpu_sample(const std::vector<float>& logits, int64_t V,
                                const std::vector<DeviceSampling>& ps, bool in_place = false) {
  const int64_t n_rows = int64_t(ps.size());
  const int64_t words = (V + 31) / 32;
  std::vector<uint32_t> masks;
  std::vector<cuda::SampleRow> rows;
  for (const DeviceSampling& d : ps) {
    rows.push_back(cuda::to_sample_row(d, int64_t(masks.size())));
    if (!d.mask.empty()) {
      std::vector<uint32_t> m(static_cast<size_t>(words), 0u);
      std::copy_n(d.mask.begin(), std::min<size_t>(d.mask.size(), m.size()), m.begin());
      masks.insert(masks.end(), m.begin(), m.end());
    }
  }
  DevBuf d_logits(logits.data(), logits.size() * 4),
      d_rows(rows.data(), rows.size() * sizeof(cuda::SampleRow)),
      d_masks(masks.data(), std::max<size_t>(masks.size(), 1) * 4), d_ids(size_t(n_rows) * 4);
  DevBuf d_work(in_place ? 16 : size_t(n_rows * V) * 4);
  float* work = in_place ? d_logits.as<float>() : d_work.as<float>();
  EXPECT_EQ(
      cuda::sample(d_ids.as<int32_t>(), d_logits.as<float>(), V, work, n_rows, V,
                   d_rows.as<cuda::SampleRow>(), masks.empty() ? nullptr : d_masks.as<uint32_t>(), nullptr),
      cudaSuccess);
  sync_or_fail();
  std::vector<int32_t> ids(static_cast<size_t>(n_rows));
  cudaMemcpy(ids.data(), d_ids.get(), ids.size() * 4, cudaMemcpyDeviceToHost);
  return ids;
}

// n draws from one row of logits with `d` at steps 0..n-1 (ld = 0: every launch row reads the same logits).
std::map<int32_t, int> gpu_draws(const std::vector<float>& logits, const DeviceSampling& d, int n) {
  const int64_t V = int64_t(logits.size()), words = (V + 31) / 32, per_launch = 500;
  std::vector<uint32_t> mask(static_cast<size_t>(words), 0u);
  if (!d.mask.empty())
    std::copy_n(d.mask.begin(), std::min<size_t>(d.mask.size(), mask.size()), mask.begin());
  DevBuf d_logits(logits.data(), logits.size() * 4), d_mask(mask.data(), mask.size() * 4),
      d_rows(size_t(per_launch) * sizeof(cuda::SampleRow)), d_ids(size_t(per_launch) * 4),
      d_work(size_t(per_launch * V) * 4);
  std::map<int32_t, int> counts;
  std::vector<cuda::SampleRow> rows(static_cast<size_t>(per_launch));
  std::vector<int32_t> ids(static_cast<size_t>(per_launch));
  for (int done = 0; done < n; done += int(per_launch)) {
    const int64_t m = std::min<int64_t>(per_launch, n - done);
    for (int64_t r = 0; r < m; ++r) {
      DeviceSampling s = d;
      s.step = uint64_t(done + r);
      rows[size_t(r)] = cuda::to_sample_row(s, 0);
    }
    cudaMemcpy(d_rows.get(), rows.data(), size_t(m) * sizeof(cuda::SampleRow), cudaMemcpyHostToDevice);
    EXPECT_EQ(cuda::sample(d_ids.as<int32_t>(), d_logits.as<float>(), 0, d_work.as<float>(), m, V,
                           d_rows.as<cuda::SampleRow>(), d_mask.as<uint32_t>(), nullptr),
              cudaSuccess);
    sync_or_fail();
    cudaMemcpy(ids.data(), d_ids.get(), size_t(m) * 4, cudaMemcpyDeviceToHost);
    for (int64_t r = 0; r < m; ++r) counts[ids[size_t(r)]]++;
  }
  return counts;
}

// The chain's distribution written out plainly (full sorts, double sums): weights of the kept tokens.
// Weights use the CPU sampler's exp so that boundaries fall where the samplers put them.
std::map<int32_t, double> reference(const std::vector<float>& logits, const DeviceSampling& d) {
  std::vector<std::pair<float, int32_t>> v;  // drawable (logit, id)
  for (size_t i = 0; i < logits.size(); ++i) {
    const bool allowed = d.mask.empty() || (i / 32 < d.mask.size() && mask_allows(d.mask, int32_t(i)));
    if (allowed && logits[i] > -kInf) v.push_back({std::min(logits[i], FLT_MAX), int32_t(i)});
  }
  std::map<int32_t, double> out;
  if (v.empty()) return out;
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  if (d.top_k > 0 && size_t(d.top_k) < v.size()) v.resize(size_t(d.top_k));
  const float mx = v[0].first, inv_t = std::min(1.0f / d.temperature, 1e30f);
  for (auto& c : v) c.first = sample_detail::exp_nonpos((c.first - mx) * inv_t);
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  double z = 0;
  for (auto& c : v) z += c.first;
  double cum = 0;
  for (auto& c : v) {
    if (d.min_p <= 0 || c.first >= std::min(d.min_p, 1.0f)) out[c.second] = c.first;
    cum += c.first;
    if (d.top_p < 1 && cum >= double(d.top_p) * z) break;
  }
  return out;
}

// Chi-square of observed counts against expected weights (renormalised here), every observed id must have a
// positive weight. Ids are pooled (in order of weight) into cells expecting >= 20 draws; with df degrees of
// freedom the statistic has mean df and sd sqrt(2 df): the bound is ~6 sd out (as tests/sample uses).
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

std::vector<uint32_t> random_mask(Rng& rng, int64_t V, int percent) {
  std::vector<uint32_t> m(static_cast<size_t>((V + 31) / 32), 0u);
  for (int64_t i = 0; i < V; ++i)
    if (rng.uniform_int(0, 99) < percent) m[size_t(i >> 5)] |= 1u << (i & 31);
  return m;
}

TEST(CudaSample, GreedyIsArgmax) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  std::vector<float> logits = rng.normal(size_t(8 * V), 3.0f);
  // Row 1: ties (the lowest id wins); row 2: NaNs around the max; row 3: +inf twice; row 4: all NaN.
  logits[size_t(V + 100)] = logits[size_t(V + 90000)] = 50.0f;
  for (int64_t j = 0; j < V; j += 3) logits[size_t(2 * V + j)] = kNaN;
  logits[size_t(3 * V + 5)] = logits[size_t(3 * V + 7)] = kInf;
  std::fill(logits.begin() + 4 * V, logits.begin() + 5 * V, kNaN);
  const auto mask = random_mask(rng, V, 10);
  const std::vector<uint32_t> none(mask.size(), 0u);
  std::vector<DeviceSampling> ps(8, params(0.0f, 3, 0.5f, 0.2f));  // filters are irrelevant when greedy
  ps[6].mask = mask;
  ps[7].mask = none;  // allows nothing
  const auto ids = gpu_sample(logits, V, ps);
  for (int r = 0; r < 8; ++r) {
    const std::span<const float> row(logits.data() + r * V, size_t(V));
    EXPECT_EQ(ids[size_t(r)], tailor::argmax(row, ps[size_t(r)].mask)) << "row " << r;
  }
  EXPECT_EQ(ids[1], 100);
  EXPECT_EQ(ids[3], 5);
  EXPECT_EQ(ids[4], -1);
  EXPECT_EQ(ids[7], -1);
}

TEST(CudaSample, TopK1IsArgmax) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  const std::vector<float> logits = rng.normal(size_t(6 * V), 2.0f);
  const auto mask = random_mask(rng, V, 30);
  std::vector<DeviceSampling> ps;
  for (int r = 0; r < 6; ++r) {
    DeviceSampling d = params(r % 2 ? 1.5f : 0.7f, 1, r < 2 ? 1.0f : 0.9f, r < 4 ? 0.0f : 0.05f, uint64_t(r));
    if (r % 3 == 0) d.mask = mask;
    ps.push_back(d);
  }
  for (int step = 0; step < 5; ++step) {
    for (auto& d : ps) d.step = uint64_t(step);
    const auto ids = gpu_sample(logits, V, ps);
    for (int r = 0; r < 6; ++r)
      EXPECT_EQ(ids[size_t(r)], tailor::argmax({logits.data() + r * V, size_t(V)}, ps[size_t(r)].mask))
          << "row " << r;
  }
}

struct DistCase {
  float t;
  int k;
  float p, min_p;
};

// (c) and (d): 20k draws per configuration, with and without a mask, against the reference probabilities.
TEST(CudaSample, FrequenciesMatchProbabilities) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  const std::vector<float> logits = rng.normal(size_t(V), 2.5f);
  const auto mask = random_mask(rng, V, 25);
  const DistCase cases[] = {{1.0f, 40, 1.0f, 0.0f},   {1.0f, 0, 0.9f, 0.0f},   {1.0f, 0, 1.0f, 0.05f},
                            {0.7f, 0, 1.0f, 0.0f},    {0.8f, 40, 0.9f, 0.05f}, {1.2f, 0, 0.9f, 0.01f},
                            {0.7f, 1000, 0.95f, 0.0f}};
  for (const DistCase& c : cases)
    for (bool masked : {false, true}) {
      DeviceSampling d = params(c.t, c.k, c.p, c.min_p, uint64_t(rng.uniform_int(0, 1 << 30)));
      if (masked) d.mask = mask;
      const auto ref = reference(logits, d);
      SCOPED_TRACE(testing::Message() << "T=" << c.t << " k=" << c.k << " p=" << c.p << " min_p=" << c.min_p
                                      << " masked=" << masked << " kept=" << ref.size());
      const auto counts = gpu_draws(logits, d, 20000);
      if (masked) {
        for (auto& [id, n] : counts)
          ASSERT_TRUE(id >= 0 && mask_allows(mask, id)) << "masked token " << id << " drawn";
      }
      expect_distribution(counts, ref);
    }
}

// (d) A mask that forbids the most likely tokens: never drawn, even at a high temperature.
TEST(CudaSample, MaskedTokensAreNeverDrawn) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  std::vector<float> logits = rng.normal(size_t(V), 1.0f);
  std::vector<uint32_t> mask(static_cast<size_t>((V + 31) / 32), 0xffffffffu);
  for (int i = 0; i < 200; ++i) {  // forbid 200 tokens and make them overwhelmingly likely
    const int id = rng.uniform_int(0, int(V) - 1);
    logits[size_t(id)] = 40.0f;
    mask[size_t(id) >> 5] &= ~(1u << (id & 31));
  }
  for (const DeviceSampling base : {params(2.0f), params(1.0f, 50), params(1.0f, 0, 0.5f), params(0.0f)}) {
    DeviceSampling d = base;
    d.mask = mask;
    const auto counts = gpu_draws(logits, d, 5000);
    for (auto& [id, n] : counts)
      EXPECT_TRUE(id >= 0 && mask_allows(mask, id)) << "masked token " << id << " drawn " << n << " times";
  }
}

// (e) The token is a function of (logits, parameters, seed, step): relaunching gives the same tokens; other
// steps and seeds give others.
TEST(CudaSample, SameSeedAndStepSameToken) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  const std::vector<float> logits = rng.normal(size_t(V), 1.0f);
  std::vector<DeviceSampling> ps;
  for (int s = 0; s < 64; ++s) {
    DeviceSampling d = params(1.0f, 0, 0.95f, 0.0f, 1234);
    d.step = uint64_t(s);
    ps.push_back(d);
  }
  std::vector<float> rows;
  for (int s = 0; s < 64; ++s) rows.insert(rows.end(), logits.begin(), logits.end());
  const auto a = gpu_sample(rows, V, ps), b = gpu_sample(rows, V, ps);
  EXPECT_EQ(a, b);
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 32u) << "steps should draw different tokens";
  for (auto& d : ps) d.seed = 99;
  EXPECT_NE(gpu_sample(rows, V, ps), a);
}

// (f) and exactness: 8 rows with different logits and parameters per launch, many steps; each token equals
// sample_row() on the CPU (same chain, same weights, same uniform, the same id-order scan).
TEST(CudaSample, BatchMatchesCpuSampleRowExactly) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  const int64_t V = kQwenVocab;
  std::vector<float> logits;
  for (int r = 0; r < 8; ++r) {
    auto row = rng.normal(size_t(V), 0.5f + 0.5f * float(r));
    if (r == 5)  // coarse values: many exact ties at the top-k and top-p boundaries
      for (float& x : row) x = std::round(x * 2.0f) / 2.0f;
    logits.insert(logits.end(), row.begin(), row.end());
  }
  const auto mask = random_mask(rng, V, 40);
  std::vector<DeviceSampling> ps = {
      params(1.0f, 40), params(0.7f, 0, 0.9f),         params(1.0f, 0, 1.0f, 0.05f),
      params(0.7f),     params(0.8f, 40, 0.9f, 0.05f), params(1.0f, 100, 0.8f),
      params(0.0f),     params(1.3f, 0, 0.95f, 0.01f)};
  ps[1].mask = mask;
  ps[5].mask = mask;
  ps[6].mask = mask;
  for (size_t r = 0; r < ps.size(); ++r) ps[r].seed = uint64_t(rng.uniform_int(0, 1 << 30)) * 7919 + r;
  int mismatches = 0;
  for (int step = 0; step < 100; ++step) {
    for (auto& d : ps) d.step = uint64_t(step);
    const auto ids = gpu_sample(logits, V, ps, step % 2 == 1);  // odd steps: in place
    for (size_t r = 0; r < ps.size(); ++r) {
      std::vector<float> row(logits.begin() + int64_t(r) * V, logits.begin() + int64_t(r + 1) * V);
      const int32_t want = sample_row(ps[r], row);
      if (ids[r] != want) {
        ++mismatches;
        ADD_FAILURE() << "step " << step << " row " << r << ": GPU " << ids[r] << ", CPU " << want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// Small vocabularies, ragged masks, -inf / NaN / +inf logits and k >= the drawable count, against the CPU.
TEST(CudaSample, EdgeCasesMatchCpu) {
  TAILOR_REQUIRE_GPU();
  Rng rng;
  SCOPED_TRACE(testing::Message() << "seed " << rng.seed);
  for (int64_t V : {int64_t(1), int64_t(2), int64_t(33), int64_t(1000), int64_t(4097)}) {
    SCOPED_TRACE(testing::Message() << "V=" << V);
    std::vector<float> logits;
    std::vector<DeviceSampling> ps;
    std::vector<std::vector<uint32_t>> masks;  // the rows' masks (spans into these)
    masks.reserve(12);
    for (int r = 0; r < 12; ++r) {
      auto row = rng.normal(size_t(V), 2.0f);
      if (r == 1) std::fill(row.begin(), row.end(), kNaN);
      if (r == 2) std::fill(row.begin(), row.end(), -kInf);
      if (r == 3) row[0] = kInf;
      if (r == 4 && V > 1) row[size_t(V - 1)] = kNaN;
      if (r == 5) std::fill(row.begin(), row.end(), 0.25f);  // all tied
      logits.insert(logits.end(), row.begin(), row.end());
      DeviceSampling d = params(r % 4 == 0 ? 0.5f : 1.0f, r % 3 == 0 ? int(V) + 5 : (r % 3 == 1 ? 2 : 0),
                                r % 2 ? 0.6f : 1.0f, r == 7 ? 0.3f : 0.0f, uint64_t(r));
      if (r >= 8) {
        masks.push_back(random_mask(rng, V, r == 11 ? 0 : 50));
        if (r == 10) masks.back() = std::vector<uint32_t>(1, 0xffffffffu);  // shorter than a vocabulary > 32
        d.mask = masks.back();
      }
      ps.push_back(d);
    }
    for (int step = 0; step < 20; ++step) {
      for (auto& d : ps) d.step = uint64_t(step);
      const auto ids = gpu_sample(logits, V, ps);
      for (size_t r = 0; r < ps.size(); ++r) {
        std::vector<float> row(logits.begin() + int64_t(r) * V, logits.begin() + int64_t(r + 1) * V);
        EXPECT_EQ(ids[r], sample_row(ps[r], row)) << "row " << r << " step " << step;
      }
    }
  }
}

TEST(CudaSample, RejectsBadShapes) {
  TAILOR_REQUIRE_GPU();
  DevBuf buf(1024);
  auto* f = buf.as<float>();
  EXPECT_EQ(cuda::sample(buf.as<int32_t>(), f, 4, f, 2, 8, nullptr, nullptr, nullptr), cudaErrorInvalidValue)
      << "in place needs ld == n_vocab";
  EXPECT_EQ(cuda::sample(buf.as<int32_t>(), f, 0, f, 1, cuda::kSampleMaxVocab + 1, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::sample(nullptr, nullptr, 0, nullptr, 0, 8, nullptr, nullptr, nullptr), cudaSuccess);
}

}  // namespace
