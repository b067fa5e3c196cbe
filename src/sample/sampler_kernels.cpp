#include "sample/sampler_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <limits>

namespace tailor::sample_detail {

namespace {

// 4 lanes: one SSE2 / NEON register, so the baseline ISA runs it natively (wider generic vectors get
// lowered lane by lane at the baseline). Element-wise IEEE arithmetic: the same results everywhere.
typedef float F8 __attribute__((vector_size(16)));
typedef int32_t I8 __attribute__((vector_size(16)));
constexpr size_t W = 4;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline F8 load8(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, F8 v) {
  std::memcpy(p, &v, sizeof v);
}
inline F8 splat(float x) {
  return F8{x, x, x, x};
}
inline bool any(I8 m) {
#if defined(__SSE__)
  return __builtin_ia32_movmskps((F8)m) != 0;  // one instruction instead of four lane extracts
#else
  int32_t r = 0;
  for (size_t j = 0; j < W; ++j) r |= m[j];
  return r != 0;
#endif
}
inline float lane_max(F8 v) {
  float m = v[0];
  for (size_t j = 1; j < W; ++j) m = v[j] > m ? v[j] : m;
  return m;
}
inline double lane_sum(F8 v) {
  double s = 0;
  for (size_t j = 0; j < W; ++j) s += v[j];
  return s;
}

// Cephes expf: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite two-part ln2), e^r by a degree-6 polynomial,
// 2^n by building the exponent bits. n is in [-126, 0] after the clamp, so 2^n is a normal float.
inline F8 exp8(F8 x) {
  const F8 lo = splat(-87.0f);
  const F8 xc = x < lo ? lo : x;
  const F8 t = xc * 1.44269504088896341f;
  const I8 n = -__builtin_convertvector(0.5f - t, I8);  // round(t) for t <= 0: truncation of 0.5 - t > 0
  const F8 fn = __builtin_convertvector(n, F8);
  F8 r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  F8 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I8 bits = (n + 127) << 23;
  const F8 res = p * (F8)bits;
  return x < lo ? splat(0.0f) : res;
}

// Visits the tokens a mask allows: whole allowed 32-token words as runs (vectorisable), others one by one.
template <class Run, class One>
void for_allowed(size_t n, TokenMask mask, Run run, One one) {
  if (mask.empty()) {
    run(size_t(0), n);
    return;
  }
  for (size_t w = 0; w < mask.size(); ++w) {
    const size_t base = w * 32;
    if (base >= n) break;
    const uint32_t word = mask[w];
    const size_t len = std::min<size_t>(32, n - base);
    if (word == 0) continue;
    if (word == 0xffffffffu) {
      run(base, len);
      continue;
    }
    for (size_t j = 0; j < len; ++j)
      if ((word >> j) & 1u) one(base + j);
  }
}

}  // namespace

float exp_nonpos(float x) {
  return exp8(splat(x))[0];
}

float sanitize(std::span<float> logits, TokenMask mask, size_t* n_valid) {
  const size_t n = logits.size();
  float* p = logits.data();
  F8 vmax = splat(kNegInf);
  I8 vcnt = {};
  float smax = kNegInf;
  size_t scnt = 0;
  auto one = [&](size_t i) {
    float l = p[i];
    const bool ok = l > kNegInf;
    l = ok ? std::min(l, FLT_MAX) : kNegInf;
    p[i] = l;
    smax = std::max(smax, l);
    scnt += ok;
  };
  auto run = [&](size_t b, size_t len) {
    size_t i = b;
    for (; i + W <= b + len; i += W) {
      F8 v = load8(p + i);
      const I8 ok = v > kNegInf;  // false for NaN
      v = v > FLT_MAX ? splat(FLT_MAX) : v;
      v = ok ? v : splat(kNegInf);
      store8(p + i, v);
      vmax = v > vmax ? v : vmax;
      vcnt -= ok;  // true lanes are -1
    }
    for (; i < b + len; ++i) one(i);
  };
  if (mask.empty()) {
    run(0, n);
  } else {
    // Masked-out tokens become -inf: visit allowed ones first (they keep their values), then blank the rest.
    const size_t covered = std::min(n, mask.size() * 32);
    for (size_t w = 0; w * 32 < covered; ++w) {
      const uint32_t word = mask[w];
      if (word == 0xffffffffu) continue;
      for (size_t j = 0; j < 32 && w * 32 + j < covered; ++j)
        if (!((word >> j) & 1u)) p[w * 32 + j] = kNegInf;
    }
    for (size_t i = covered; i < n; ++i) p[i] = kNegInf;
    for_allowed(n, mask, run, one);
  }
  size_t cnt = scnt;
  for (size_t j = 0; j < W; ++j) cnt += size_t(vcnt[j]);  // lanes counted up (vcnt -= -1 per valid lane)
  *n_valid = cnt;
  return std::max(smax, lane_max(vmax));
}

double to_weights(std::span<float> logits, float max, float inv_t, float cut, double* mass_at_or_above_cut) {
  const size_t n = logits.size();
  float* p = logits.data();
  double total = 0, above = 0;
  size_t i = 0;
  // Float lanes over blocks of 256, then double: short float sums keep the total accurate to ~1e-7.
  // Two vectors per step: independent exp chains keep the pipeline busy.
  while (i + 2 * W <= n) {
    F8 acc = {}, acc_above = {};
    const size_t end = std::min(n, i + 256);
    for (; i + 2 * W <= end; i += 2 * W) {
      const F8 w0 = exp8((load8(p + i) - max) * inv_t);
      const F8 w1 = exp8((load8(p + i + W) - max) * inv_t);
      store8(p + i, w0);
      store8(p + i + W, w1);
      acc += w0 + w1;
      acc_above += (w0 >= cut ? w0 : splat(0.0f)) + (w1 >= cut ? w1 : splat(0.0f));
    }
    total += lane_sum(acc);
    above += lane_sum(acc_above);
  }
  for (; i < n; ++i) {
    p[i] = exp_nonpos((p[i] - max) * inv_t);
    total += p[i];
    if (p[i] >= cut) above += p[i];
  }
  if (mass_at_or_above_cut) *mass_at_or_above_cut = above;
  return total;
}

int32_t scan_draw(std::span<const float> w, double target) {
  const size_t n = w.size();
  const float* p = w.data();
  double cum = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    F8 acc = load8(p + i);
    for (size_t j = W; j < 32; j += W) acc += load8(p + i + j);
    const double bs = lane_sum(acc);
    if (cum + bs <= target) {
      cum += bs;
      continue;
    }
    for (size_t j = i; j < i + 32; ++j) {
      cum += p[j];
      if (cum > target && p[j] > 0) return int32_t(j);
    }
  }
  for (; i < n; ++i) {
    cum += p[i];
    if (cum > target && p[i] > 0) return int32_t(i);
  }
  for (size_t j = n; j-- > 0;)  // rounding left the running sum a hair short of the target
    if (p[j] > 0) return int32_t(j);
  return -1;
}

void collect(std::span<const float> v, float cut, std::vector<Cand>* out, double* mass, float below) {
  const size_t n = v.size();
  const float* p = v.data();
  double m = 0;
  auto one = [&](size_t i) {
    if (p[i] >= cut && p[i] < below && p[i] > kNegInf) {
      out->push_back({p[i], int32_t(i)});
      m += p[i];
    }
  };
  size_t i = 0;
  for (; i + W <= n; i += W) {
    const F8 x = load8(p + i);
    if (!any((x >= cut) & (x < below) & (x > kNegInf))) continue;
    for (size_t j = i; j < i + W; ++j) one(j);
  }
  for (; i < n; ++i) one(i);
  if (mass) *mass += m;
}

void weight_histogram(std::span<const float> w, double* mass) {
  std::fill(mass, mass + kBins, 0.0);
  // Two interleaved tables so runs of equal bins do not serialise on one memory location; summed after
  // in a fixed order.
  thread_local double second[kBins];
  std::fill(second, second + kBins, 0.0);
  const size_t n = w.size();
  const float* p = w.data();
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    uint32_t a, b;
    std::memcpy(&a, p + i, 4);
    std::memcpy(&b, p + i + 1, 4);
    mass[std::min<size_t>(a >> kBinShift, kBins - 1)] += p[i];
    second[std::min<size_t>(b >> kBinShift, kBins - 1)] += p[i + 1];
  }
  for (; i < n; ++i) {
    uint32_t a;
    std::memcpy(&a, p + i, 4);
    mass[std::min<size_t>(a >> kBinShift, kBins - 1)] += p[i];
  }
  for (size_t k = 0; k < kBins; ++k) mass[k] += second[k];
  mass[0] = 0;  // zero weights (and subnormals, which exp_nonpos never makes) carry no mass
}

float bin_lower(size_t bin) {
  const uint32_t bits = uint32_t(bin) << kBinShift;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double keep_ranked_at_or_above(std::span<float> w, float w_min, int32_t id_min) {
  const size_t n = w.size();
  float* p = w.data();
  double total = 0;
  size_t i = 0;
  const I8 lane = {0, 1, 2, 3};
  while (i + W <= n) {
    F8 acc = {};
    const size_t end = std::min(n, i + 256);
    for (; i + W <= end; i += W) {
      const F8 x = load8(p + i);
      const I8 idx = lane + int32_t(i);
      const I8 keep = (x > w_min) | ((x == w_min) & (idx <= id_min));
      const F8 y = keep ? x : splat(0.0f);
      store8(p + i, y);
      acc += y;
    }
    total += lane_sum(acc);
  }
  for (; i < n; ++i) {
    if (!(p[i] > w_min || (p[i] == w_min && int32_t(i) <= id_min))) p[i] = 0;
    total += p[i];
  }
  return total;
}

void top_k(std::span<const float> l, size_t k, std::vector<Cand>* out) {
  const size_t n = l.size();
  const float* p = l.data();
  out->clear();
  if (k == 0) return;
  size_t i = 0;
  for (; i < n && out->size() < k; ++i) {
    if (!(p[i] > kNegInf)) continue;
    out->push_back({p[i], int32_t(i)});
    std::push_heap(out->begin(), out->end(), ranks_above);
  }
  if (out->size() < k) return;
  // Ids grow along the scan, so a later token ranks above the worst kept one only with a strictly
  // higher logit: a vector compare against that logit skips most blocks.
  auto one = [&](size_t j) {
    if (p[j] > out->front().first) {
      std::pop_heap(out->begin(), out->end(), ranks_above);
      out->back() = {p[j], int32_t(j)};
      std::push_heap(out->begin(), out->end(), ranks_above);
    }
  };
  for (; i % W && i < n; ++i) one(i);
  for (; i + W <= n; i += W) {
    if (!any(load8(p + i) > out->front().first)) continue;
    for (size_t j = i; j < i + W; ++j) one(j);
  }
  for (; i < n; ++i) one(i);
}

int32_t argmax_masked(std::span<const float> logits, TokenMask mask) {
  const size_t n = logits.size();
  const float* p = logits.data();
  // Pass 1: the max over allowed tokens (NaN never wins: comparisons with NaN are false).
  F8 vmax = splat(kNegInf);
  float smax = kNegInf;
  for_allowed(
      n, mask,
      [&](size_t b, size_t len) {
        size_t i = b;
        for (; i + W <= b + len; i += W) {
          const F8 v = load8(p + i);
          vmax = v > vmax ? v : vmax;
        }
        for (; i < b + len; ++i) smax = p[i] > smax ? p[i] : smax;
      },
      [&](size_t i) { smax = p[i] > smax ? p[i] : smax; });
  const float best = std::max(smax, lane_max(vmax));
  if (!(best > kNegInf)) return -1;
  // Pass 2: the lowest allowed id holding it.
  int32_t arg = -1;
  for_allowed(
      n, mask,
      [&](size_t b, size_t len) {
        if (arg >= 0) return;
        size_t i = b;
        for (; i + W <= b + len; i += W)
          if (any(load8(p + i) == best)) break;
        for (; i < b + len; ++i)
          if (p[i] == best) {
            arg = int32_t(i);
            return;
          }
      },
      [&](size_t i) {
        if (arg < 0 && p[i] == best) arg = int32_t(i);
      });
  return arg;
}

}  // namespace tailor::sample_detail
