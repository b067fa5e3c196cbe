// Vocabulary-wide loops of the sampler (internal to src/sample). Written with fixed-width GCC/Clang vector
// extensions rather than runtime dispatch: every machine runs the same arithmetic in the same order, so a
// seeded sampler picks the same tokens everywhere, and the baseline ISA still gets 4-8 lanes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "sample/sampler.h"

namespace tailor::sample_detail {

using Cand = std::pair<float, int32_t>;  // (logit or weight, token id)

// Strict total order "a ranks above b": higher value, then lower id. Every selection uses it, so results
// never depend on how the standard library orders ties.
inline bool ranks_above(const Cand& a, const Cand& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// exp(x) for x <= 0 (relative error ~1e-7; exactly 0 below -87, exactly 1 at 0). The scalar form runs the
// vector code, so both give bit-identical results.
float exp_nonpos(float x);

// In place: NaN, -inf and masked-out tokens -> -inf; +inf -> FLT_MAX. Returns the max (-inf if none) and
// the number of tokens left above -inf.
float sanitize(std::span<float> logits, TokenMask mask, size_t* n_valid);

// In place: logits[i] -> exp((logits[i] - max) * inv_t). Returns the sum (fixed summation order).
// Also returns the sum of the weights >= cut in *mass_at_or_above_cut when given.
double to_weights(std::span<float> logits, float max, float inv_t, float cut = 2.0f,
                  double* mass_at_or_above_cut = nullptr);

// First index whose running sum of weights exceeds `target`; the last positive weight if rounding leaves
// the total short; -1 if all weights are 0.
int32_t scan_draw(std::span<const float> weights, double target);

// Appends (v[i], i) for every cut <= v[i] < below with v[i] > -inf to out; adds the appended values to
// *mass if given.
void collect(std::span<const float> v, float cut, std::vector<Cand>* out, double* mass,
             float below = std::numeric_limits<float>::infinity());

// Weight histogram for top-p over the whole vocabulary: bin = top bits of the float (16 bins per octave),
// which orders positive floats like their values. mass[bin] += w for every w > 0.
constexpr int kBinShift = 19;
constexpr size_t kBins = (0x3f800000u >> kBinShift) + 1;  // weights lie in [0, 1]
void weight_histogram(std::span<const float> w, double* mass);
float bin_lower(size_t bin);  // smallest weight in the bin

// In place: keeps w[i] when (w[i], i) ranks at or above (w_min, id_min), zeroes it otherwise; returns the
// kept sum.
double keep_ranked_at_or_above(std::span<float> w, float w_min, int32_t id_min);

// The k best (logit desc, id asc) of the logits above -inf, as a heap in out (k < number of valid tokens).
void top_k(std::span<const float> logits, size_t k, std::vector<Cand>* out);

// Exact argmax (lowest id on ties; NaN never wins; -1 when nothing is above -inf), optionally masked.
int32_t argmax_masked(std::span<const float> logits, TokenMask mask);

}  // namespace tailor::sample_detail
