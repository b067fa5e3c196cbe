// The sampler chain. Semantics (each stage sees the survivors of the previous one):
//   penalties (on raw logits) -> grammar mask -> temperature -> top-k -> top-p -> min-p -> draw.
// - NaN logits count as -inf (never drawn); +inf counts as the largest float. No token above -inf -> -1.
// - temperature 0 (or a NaN/negative one, which validate() rejects) is greedy: exact argmax, lowest id on
//   ties, no RNG draw.
// - Weights: w_i = exp((l_i - max) / T), so the most likely token has weight exactly 1 and p_i = w_i / sum.
// - top-k keeps the k highest logits; ties at the boundary go to the lowest ids.
// - top-p keeps the shortest prefix of the survivors, ranked by weight (ties: lowest id), whose weight
//   reaches top_p x the survivors' total; at least one token.
// - min-p keeps w_i >= min_p (p_i >= min_p x p_max).
// - Draw: exactly one 64-bit value from the mt19937_64 per non-greedy call; the token is a pure function of
//   (seed, every call's logits/history/mask), identical on every machine (fixed-width vector code).
// Speed: no whole-vocabulary sort. top-k is a heap behind a vector compare; top-p collects only the tokens
// above a weight cut that provably contains the nucleus, then a weighted quickselect finds the boundary.
#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sample/sampler_kernels.h"

namespace tailor {

using sample_detail::Cand;
using sample_detail::ranks_above;

namespace {

// Top-p: moves the shortest rank-order prefix of `c` (weights) whose sum reaches `target` to the front, in
// no particular order, and returns its length (>= 1). Weighted quickselect: O(n) expected, so a flat
// distribution with a nucleus of 100k tokens costs no sort. Pivots are median-of-three by position
// (deterministic); after too many rounds (an adversarial order) the rest is simply sorted.
size_t nucleus(std::vector<Cand>& c, double target) {
  size_t lo = 0, hi = c.size();  // [0, lo) is kept; the boundary lies in [lo, hi)
  double need = target;
  for (int rounds = 0; hi - lo > 32 && rounds < 64; ++rounds) {
    const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (ranks_above(c[mid], c[lo])) std::swap(c[mid], c[lo]);  // median of three to `last`
    if (ranks_above(c[last], c[lo])) std::swap(c[last], c[lo]);
    if (ranks_above(c[mid], c[last])) std::swap(c[mid], c[last]);
    const Cand pivot = c[last];
    const auto split = std::partition(c.begin() + long(lo), c.begin() + long(last),
                                      [&](const Cand& x) { return ranks_above(x, pivot); });
    const size_t p = size_t(split - c.begin());
    double mass = 0;
    for (size_t i = lo; i < p; ++i) mass += c[i].first;
    std::swap(c[p], c[last]);
    if (mass >= need) {
      hi = p;
    } else if (mass + pivot.first >= need) {
      return p + 1;
    } else {
      need -= mass + pivot.first;
      lo = p + 1;
    }
  }
  std::sort(c.begin() + long(lo), c.begin() + long(hi), ranks_above);
  double cum = 0;
  for (size_t i = lo; i < hi; ++i) {
    cum += c[i].first;
    if (cum >= need) return i + 1;
  }
  return std::max<size_t>(hi, 1);  // rounding left the sum a hair short: the boundary is the last one
}

// Top-p when the nucleus is large (a flat distribution): a weight histogram finds the bin holding the
// boundary, only that bin is ranked exactly, and every token ranked below the boundary gets weight 0 in
// place before the draw. O(n) with no candidate list for the bulk of the nucleus.
int32_t draw_flat_nucleus(std::span<float> w, double target, double u, std::vector<Cand>& cand) {
  using namespace sample_detail;
  thread_local double hist[kBins];
  weight_histogram(w, hist);
  double above = 0;
  size_t b = 0;
  for (size_t k = kBins; k-- > 1;) {
    if (above + hist[k] >= target) {
      b = k;
      break;
    }
    above += hist[k];
  }
  if (b == 0) return scan_draw(w, u * above);  // rounding: the whole vocabulary is the nucleus
  cand.clear();
  collect(w, bin_lower(b), &cand, nullptr,
          b + 1 < kBins ? bin_lower(b + 1) : std::numeric_limits<float>::infinity());
  const size_t kept = nucleus(cand, target - above);
  Cand last = cand[0];  // the lowest-ranked kept token is the boundary
  for (size_t i = 1; i < kept; ++i)
    if (ranks_above(last, cand[i])) last = cand[i];
  return scan_draw(w, u * keep_ranked_at_or_above(w, last.first, last.second));
}

}  // namespace

Status validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return invalid_argument(
        cat("temperature must be a finite number >= 0 (0 = greedy), got ", p.temperature));
  if (p.top_k < 0) return invalid_argument(cat("top_k must be >= 0 (0 = off), got ", p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1))
    return invalid_argument(cat("top_p must be in (0, 1] (1 = off), got ", p.top_p));
  if (!(p.min_p >= 0 && p.min_p <= 1))
    return invalid_argument(cat("min_p must be in [0, 1] (0 = off), got ", p.min_p));
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0)
    return invalid_argument(
        cat("repetition_penalty must be a finite number > 0 (1 = off), got ", p.repetition_penalty));
  if (!std::isfinite(p.presence_penalty))
    return invalid_argument(
        cat("presence_penalty must be a finite number (0 = off), got ", p.presence_penalty));
  if (!std::isfinite(p.frequency_penalty))
    return invalid_argument(
        cat("frequency_penalty must be a finite number (0 = off), got ", p.frequency_penalty));
  if (p.penalty_last_n < -1)
    return invalid_argument(
        cat("penalty_last_n must be >= -1 (-1 = whole history, 0 = off), got ", p.penalty_last_n));
  return {};
}

void apply_penalties(std::span<float> logits, std::span<const int32_t> history, const SamplerParams& p) {
  const bool rep = p.repetition_penalty != 1.0f && p.repetition_penalty > 0;
  if ((!rep && p.presence_penalty == 0 && p.frequency_penalty == 0) || p.penalty_last_n == 0) return;
  const size_t n_last =
      p.penalty_last_n < 0 ? history.size() : std::min(history.size(), size_t(p.penalty_last_n));
  // Counting needs the window sorted; the scratch keeps its capacity, so steady state allocates nothing.
  thread_local std::vector<int32_t> ids;
  ids.clear();
  for (int32_t id : history.last(n_last))
    if (id >= 0 && size_t(id) < logits.size()) ids.push_back(id);  // ids outside the vocabulary: ignored
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    float& l = logits[size_t(ids[i])];
    // CTRL (Keskar et al. 2019, sec. 4.1) as llama.cpp applies it: shrink positive logits, grow negative.
    if (rep) l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    // OpenAI's presence/frequency penalties: l -= count * frequency + (count > 0) * presence.
    l -= float(j - i) * p.frequency_penalty + p.presence_penalty;
    i = j;
  }
}

int32_t argmax(std::span<const float> logits, TokenMask mask) {
  return sample_detail::argmax_masked(logits, mask);
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}

namespace {

// The chain after the penalties. draw_u() gives the uniform in [0, 1); it is called exactly once, and only
// when a token is drawn (not when greedy, not when nothing is drawable). id_order: the kept candidates are
// scanned in id order for the draw (as the CUDA sampler does) instead of the order selection left them in.
template <class DrawU>
int32_t run_chain(const SamplerParams& p, std::span<float> logits, TokenMask mask, DrawU&& draw_u,
                  bool id_order, std::vector<Cand>& cand) {
  const size_t n = logits.size();
  if (n == 0) return -1;
  if (!(p.temperature > 0)) return argmax(logits, mask);

  size_t n_valid = 0;
  const float mx = sample_detail::sanitize(logits, mask, &n_valid);
  if (n_valid == 0) return -1;  // the mask allows nothing, or every allowed logit is NaN / -inf
  // 1/T capped so the max's weight stays exactly 1 ((max - max) x cap = 0, never 0 x inf).
  const float inv_t = std::min(1.0f / p.temperature, 1e30f);
  auto weight = [&](float l) { return sample_detail::exp_nonpos((l - mx) * inv_t); };
  const double u = draw_u();

  const size_t k = (p.top_k > 0 && size_t(p.top_k) < n_valid) ? size_t(p.top_k) : 0;
  const bool top_p = p.top_p < 1.0f;  // NaN: off
  const bool min_p = p.min_p > 0.0f;  // NaN: off
  const float min_w = std::min(p.min_p, 1.0f);
  if (cand.capacity() < n) cand.reserve(n);  // first call only: never reallocates afterwards

  if (!k && !top_p) {
    if (!min_p) {  // plain temperature sampling: no candidate list at all
      const double z = sample_detail::to_weights(logits, mx, inv_t);
      return sample_detail::scan_draw(logits, u * z);
    }
    // min-p alone: pre-select in logit space with a slightly loose cut (w >= min_p <=> l >= max + T ln
    // min_p), then apply the exact weight rule below.
    cand.clear();
    sample_detail::collect(logits, mx + p.temperature * (std::log(min_w) - 1e-4f), &cand, nullptr);
    for (Cand& c : cand) c.first = weight(c.first);
  } else if (k) {
    sample_detail::top_k(logits, k, &cand);
    for (Cand& c : cand) c.first = weight(c.first);
    if (top_p) {
      double z = 0;
      for (const Cand& c : cand) z += c.first;
      cand.resize(nucleus(cand, double(p.top_p) * z));
    }
  } else {
    // Nucleus over the whole vocabulary. If the tokens with weight >= cut already hold top_p of the total,
    // the nucleus lies among them (each ranks above every token below the cut), so only they need ranking.
    // With min-p on, the cut is min-p's: if its survivors do not reach top_p, the nucleus contains them
    // all and min-p alone decides. Otherwise 1e-2: a peaked distribution's nucleus is a few tokens.
    const float cut = min_p ? min_w : 1e-2f;
    double mass = 0;
    const double target = double(p.top_p) * sample_detail::to_weights(logits, mx, inv_t, cut, &mass);
    const bool nucleus_inside = mass >= target;
    if (!nucleus_inside && !min_p) return draw_flat_nucleus(logits, target, u, cand);
    cand.clear();
    sample_detail::collect(logits, cut, &cand, nullptr);
    if (nucleus_inside) cand.resize(nucleus(cand, target));
  }
  if (min_p)  // the max (weight exactly 1 >= min_w) always survives
    cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const Cand& c) { return c.first < min_w; }),
               cand.end());
  if (cand.empty()) return -1;  // unreachable (the max survives every stage); a guard, not a path
  if (id_order)
    std::sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) { return a.second < b.second; });

  double z = 0;
  for (const Cand& c : cand) z += c.first;
  const double target = u * z;
  double cum = 0;
  for (const Cand& c : cand) {
    cum += c.first;
    if (cum > target) return c.second;
  }
  return cand.back().second;
}

}  // namespace

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history, TokenMask mask) {
  if (logits.empty()) return -1;
  apply_penalties(logits, history, p_);
  // The top 53 bits of one mt19937_64 value: uniform in [0, 1).
  return run_chain(
      p_, logits, mask, [&] { return double(rng_() >> 11) * 0x1.0p-53; }, false, cand_);
}

int32_t sample_with_uniform(const SamplerParams& p, std::span<float> logits, TokenMask mask, double u) {
  thread_local std::vector<Cand> cand;  // keeps its capacity: no allocation per call after the first
  return run_chain(
      p, logits, mask, [u] { return u; }, true, cand);
}

}  // namespace tailor
