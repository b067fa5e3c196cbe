// Sampler chain on the GPU (see sample.cuh). One block per row; every stage is a pass over the row:
//   1. m = max of the drawable logits (allowed by the mask, above -inf; +inf -> FLT_MAX), and their count;
//   2. top-k: the k-th largest logit K by radix select over its order-preserving bits (4 passes of 8 bits),
//      then the id of the last tie kept (ties at the boundary go to the lowest ids, as on the CPU);
//   3. weights w_i = exp((l_i - m) / T) of the top-k survivors (0 elsewhere) into `work`, with the CPU's exp
//      (sample_detail::exp_nonpos, Cephes) in the same IEEE operations, so both see the same weights;
//   4. top-p: the shortest prefix in rank order (weight desc, id asc) reaching top_p of the survivors' mass:
//      radix select over the weights' bits with each token counting its weight, then the last tie kept;
//   5. min-p keeps w_i >= min_p (the max has weight exactly 1);
//   6. draw: t = u * (kept mass), the first token in id order whose running mass exceeds t.
// Masses are sums of weights in 64-bit fixed point (44 fractional bits): exact, so they do not depend on the
// order in which threads add them, and a replayed launch draws the same token.
#include <cfloat>
#include <climits>
#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/sample.cuh"
#include "core/philox.h"

namespace tailor::cuda {

namespace {

using u64 = unsigned long long;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr float kFixedScale = 17592186044416.0f;  // 2^44

struct Scratch {
  u64 hist[kWarps][256];  // radix histograms, one per warp (no contention between warps)
  u64 red[kWarps];
  float redf[kWarps];
  int redi[kWarps];
  uint32_t digit;
  u64 need;
  int found;
};

// exp(x) for x <= 0, the same IEEE operations in the same order as sample_detail::exp_nonpos (Cephes expf:
// x = n ln2 + r, e^r by a degree-6 polynomial, 2^n from exponent bits). The _rn intrinsics keep nvcc from
// fusing a multiply and an add into an FMA, which would round differently from the CPU.
__device__ __forceinline__ float exp_nonpos(float x) {
  if (x < -87.0f) return 0.0f;  // also -inf
  const float t = __fmul_rn(x, 1.44269504088896341f);
  const int n = -__float2int_rz(__fsub_rn(0.5f, t));  // round(t) for t <= 0
  const float fn = __int2float_rn(n);
  float r = __fsub_rn(x, __fmul_rn(fn, 0.693359375f));
  r = __fsub_rn(r, __fmul_rn(fn, -2.12194440e-4f));
  float p = 1.9875691500e-4f;
  p = __fadd_rn(__fmul_rn(p, r), 1.3981999507e-3f);
  p = __fadd_rn(__fmul_rn(p, r), 8.3334519073e-3f);
  p = __fadd_rn(__fmul_rn(p, r), 4.1665795894e-2f);
  p = __fadd_rn(__fmul_rn(p, r), 1.6666665459e-1f);
  p = __fadd_rn(__fmul_rn(p, r), 5.0000001201e-1f);
  p = __fadd_rn(__fadd_rn(__fmul_rn(__fmul_rn(p, r), r), r), 1.0f);
  return __fmul_rn(p, __int_as_float((n + 127) << 23));
}

// Order-preserving bits of a finite logit: a > b <=> key(a) > key(b); -0 and +0 share a key (they are equal).
__device__ __forceinline__ uint32_t logit_key(float l) {
  const uint32_t u = __float_as_uint(l == 0.0f ? 0.0f : l);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A weight in [0, 1] as fixed point with 44 fractional bits (exact for w >= 2^-20, within 2^-45 below).
__device__ __forceinline__ u64 fixed(float w) {
  return __float2ull_rn(__fmul_rn(w, kFixedScale));
}

// ---- block-wide helpers (every thread of the block calls them; every thread gets the result) ----

__device__ u64 block_exclusive_scan(u64 v, u64* total, Scratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 x = v;  // inclusive scan within the warp
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(kFull, x, o);
    if (lane >= o) x += y;
  }
  __syncthreads();  // s.red may still be read by an earlier call
  if (lane == 31) s.red[warp] = x;
  __syncthreads();
  u64 w = lane < kWarps ? s.red[lane] : 0;  // inclusive scan of the warp totals
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(kFull, w, o);
    if (lane >= o) w += y;
  }
  *total = __shfl_sync(kFull, w, 31);
  const u64 prev = __shfl_sync(kFull, w, warp > 0 ? warp - 1 : 0);
  return (warp > 0 ? prev : 0) + x - v;
}

__device__ u64 block_sum(u64 v, Scratch& s) {
  u64 total;
  block_exclusive_scan(v, &total, s);
  return total;
}

__device__ float block_max(float v, Scratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  __syncthreads();
  if (lane == 0) s.redf[warp] = v;
  __syncthreads();
  v = lane < kWarps ? s.redf[lane] : -INFINITY;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

// Greedy's order: higher value, then lower index; NaN never wins (as tailor::argmax).
__device__ __forceinline__ void better(float& bv, int& bi, float v, int i) {
  if (v > bv || (v == bv && i < bi) || (bv != bv && v == v)) {
    bv = v;
    bi = i;
  }
}

__device__ void block_best(float& bv, int& bi, Scratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, bv, o);
    const int oi = __shfl_xor_sync(kFull, bi, o);
    better(bv, bi, ov, oi);
  }
  __syncthreads();
  if (lane == 0) {
    s.redf[warp] = bv;
    s.redi[warp] = bi;
  }
  __syncthreads();
  bv = lane < kWarps ? s.redf[lane] : -INFINITY;
  bi = lane < kWarps ? s.redi[lane] : INT_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, bv, o);
    const int oi = __shfl_xor_sync(kFull, bi, o);
    better(bv, bi, ov, oi);
  }
}

// Sum of `amount` over the lanes of `peers` (lanes that agree on a histogram bin; amount < 2^45). Two 22-bit
// limbs so that 32 lanes cannot overflow a 32-bit sum.
__device__ __forceinline__ u64 group_sum(unsigned peers, u64 amount) {
  const uint32_t lo = uint32_t(amount & 0x3fffffu), hi = uint32_t(amount >> 22);
#if __CUDA_ARCH__ >= 800
  const uint32_t slo = __reduce_add_sync(peers, lo), shi = __reduce_add_sync(peers, hi);
#else
  uint32_t slo = 0, shi = 0;
  for (unsigned m = peers; m; m &= m - 1) {
    const int src = __ffs(m) - 1;
    slo += __shfl_sync(peers, lo, src);
    shi += __shfl_sync(peers, hi, src);
  }
#endif
  return (u64(shi) << 22) + slo;
}

// Radix select by mass: among the tokens for which key_amount(j, key, amount) is true (amount < 2^45), the
// key K such that the tokens with key > K hold less than `need` and those with key >= K at least `need` (so
// need <= the total). Returns K and, in *rest, how much of the need is left for the tokens with key == K
// (in [1, their mass]). With amount = 1 it is the need-th largest key. 4 passes of 8 bits, top bits first.
template <class KeyAmount>
__device__ uint32_t radix_select(int n, KeyAmount key_amount, u64 need, u64* rest, Scratch& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t prefix = 0, pmask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < kWarps * 256; i += kThreads) (&s.hist[0][0])[i] = 0;
    __syncthreads();
    const int n_iter = (n + kThreads - 1) / kThreads;
    for (int it = 0; it < n_iter; ++it) {  // the same trip count in every lane (the warp stays converged)
      const int j = it * kThreads + int(threadIdx.x);
      uint32_t key = 0;
      u64 amount = 0;
      const bool has = j < n && key_amount(j, key, amount) && amount > 0 && (key & pmask) == prefix;
      if (!__any_sync(kFull, has)) continue;
      // Lanes with the same bin add once (a warp's lanes hitting one shared address would serialize).
      const uint32_t bin = has ? (key >> shift) & 255u : 256u;
      const unsigned peers = __match_any_sync(kFull, bin);
      const u64 sum = group_sum(peers, has ? amount : 0);
      if (has && lane == __ffs(peers) - 1) s.hist[warp][bin] += sum;
    }
    __syncthreads();
    // Bins from the top digit down: the one where the running mass reaches `need`.
    u64 v = 0;
    const uint32_t d = 255u - threadIdx.x;
    if (threadIdx.x < 256)
      for (int w = 0; w < kWarps; ++w) v += s.hist[w][d];
    u64 total;
    const u64 above = block_exclusive_scan(v, &total, s);
    if (threadIdx.x < 256 && above < need && need <= above + v) {
      s.digit = d;
      s.need = need - above;
    }
    __syncthreads();
    prefix |= s.digit << shift;
    pmask |= 255u << shift;
    need = s.need;
  }
  *rest = need;
  return prefix;
}

// The first index i with f(0) + ... + f(i) > t(total), where total = f(0) + ... + f(n-1); -1 if there is
// none. Each thread owns a contiguous slice; a scan of the slice sums finds the one slice to walk.
template <class F, class T>
__device__ int find_cumulative(int n, F f, T t_of_total, Scratch& s) {
  const int chunk = (n + kThreads - 1) / kThreads;
  const int begin = min(int(threadIdx.x) * chunk, n), end = min(begin + chunk, n);
  u64 own = 0;
  for (int j = begin; j < end; ++j) own += f(j);
  u64 total;
  const u64 excl = block_exclusive_scan(own, &total, s);
  const u64 t = t_of_total(total);
  if (threadIdx.x == 0) s.found = -1;
  __syncthreads();
  if (own > 0 && excl <= t && t < excl + own) {
    u64 c = excl;
    for (int j = begin; j < end; ++j) {
      c += f(j);
      if (c > t) {
        s.found = j;
        break;
      }
    }
  }
  __syncthreads();
  return s.found;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(int32_t* ids, const float* logits, int64_t ld, float* work, int n, const SampleRow* rows,
                  const uint32_t* masks) {
  __shared__ Scratch s;
  pdl_trigger();
  pdl_wait();
  const int64_t r = blockIdx.x;
  const SampleRow p = rows[r];
  const float* lrow = logits + r * ld;  // no __restrict__: work may alias logits (in place)
  float* wrow = work + r * int64_t(n);
  const uint32_t* mask = p.mask_offset >= 0 ? masks + p.mask_offset : nullptr;
  auto allowed = [&](int j) { return mask == nullptr || ((mask[j >> 5] >> (j & 31)) & 1u); };

  if (!(p.temperature > 0.0f)) {  // greedy: exact argmax of the allowed logits, as tailor::argmax
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int j = threadIdx.x; j < n; j += kThreads)
      if (allowed(j)) better(bv, bi, lrow[j], j);
    block_best(bv, bi, s);
    if (threadIdx.x == 0) ids[r] = bv > -INFINITY ? bi : -1;
    return;
  }

  // Drawable logits: allowed and above -inf (NaN fails that test), +inf clamped to the largest float.
  auto logit = [&](int j) -> float {
    const float l = lrow[j];
    return (l > -INFINITY && allowed(j)) ? fminf(l, FLT_MAX) : -INFINITY;
  };

  // 1. The max and the number of drawable tokens.
  float mx = -INFINITY;
  u64 n_valid = 0;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const float l = logit(j);
    mx = fmaxf(mx, l);
    n_valid += l > -INFINITY;
  }
  mx = block_max(mx, s);
  n_valid = block_sum(n_valid, s);
  if (n_valid == 0) {
    if (threadIdx.x == 0) ids[r] = -1;
    return;
  }
  // 1/T capped so the max's weight stays exactly 1 (as on the CPU).
  const float inv_t = fminf(__fdiv_rn(1.0f, p.temperature), 1e30f);

  // 2. top-k: keep key > kkey, or key == kkey and id <= kid.
  const bool k_on = p.top_k > 0 && u64(p.top_k) < n_valid;
  uint32_t kkey = 0;
  int kid = INT_MAX;
  if (k_on) {
    u64 ties = 0;
    kkey = radix_select(
        n,
        [&](int j, uint32_t& key, u64& amount) {
          const float l = logit(j);
          if (!(l > -INFINITY)) return false;
          key = logit_key(l);
          amount = 1;
          return true;
        },
        u64(p.top_k), &ties, s);
    kid = find_cumulative(
        n,
        [&](int j) -> u64 {
          const float l = logit(j);
          return (l > -INFINITY && logit_key(l) == kkey) ? 1 : 0;
        },
        [&](u64) { return ties - 1; }, s);
  }

  // 3. Weights of the survivors (in place when work == logits: each thread reads, then writes, its own j).
  u64 z = 0;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const float l = logit(j);
    float w = 0.0f;
    if (l > -INFINITY) {
      const uint32_t key = logit_key(l);
      if (!k_on || key > kkey || (key == kkey && j <= kid))
        w = exp_nonpos(__fmul_rn(__fsub_rn(l, mx), inv_t));
    }
    wrow[j] = w;
    z += fixed(w);
  }
  z = block_sum(z, s);  // >= 2^44: the max has weight 1

  // 4. top-p: keep bits(w) > pkey, or bits(w) == pkey and id <= pid. Weights are >= 0, so their bits order
  // like their values.
  const bool p_on = p.top_p < 1.0f;
  uint32_t pkey = 0;
  int pid = INT_MAX;
  if (p_on) {
    u64 target = u64(ceil(double(p.top_p) * double(z)));  // keep the prefix whose mass >= top_p * z
    target = target < 1 ? 1 : (target > z ? z : target);
    u64 rest = 0;
    pkey = radix_select(
        n,
        [&](int j, uint32_t& key, u64& amount) {
          const float w = wrow[j];
          key = __float_as_uint(w);
          amount = fixed(w);
          return true;
        },
        target, &rest, s);
    const u64 q = fixed(__uint_as_float(pkey));  // > 0: the boundary bin holds mass
    const u64 m = (rest + q - 1) / q;            // ties needed, in id order
    pid = find_cumulative(
        n,
        [&](int j) -> u64 {
          const float w = wrow[j];
          return (__float_as_uint(w) == pkey && fixed(w) > 0) ? 1 : 0;
        },
        [&](u64) { return m - 1; }, s);
  }

  // 5 and 6. min-p, then the draw over the kept mass in id order.
  const bool min_on = p.min_p > 0.0f;
  const float min_w = fminf(p.min_p, 1.0f);
  const double u = philox_uniform(p.seed, p.step);
  const int id = find_cumulative(
      n,
      [&](int j) -> u64 {
        const float w = wrow[j];
        const uint32_t bits = __float_as_uint(w);
        if (p_on && !(bits > pkey || (bits == pkey && j <= pid))) return 0;
        if (min_on && !(w >= min_w)) return 0;
        return fixed(w);
      },
      [&](u64 total) {
        const u64 t = u64(u * double(total));
        return t < total ? t : total - 1;
      },
      s);
  if (threadIdx.x == 0) ids[r] = id;
}

}  // namespace

cudaError_t sample(int32_t* ids, const float* logits, int64_t ld, float* work, int64_t n_rows,
                   int64_t n_vocab, const SampleRow* rows, const uint32_t* masks, cudaStream_t stream) {
  if (n_rows <= 0) return cudaSuccess;
  if (n_vocab <= 0 || n_vocab > kSampleMaxVocab || n_rows > INT_MAX || ld < 0) return cudaErrorInvalidValue;
  if (work == logits && ld != n_vocab) return cudaErrorInvalidValue;
  return launch_kernel(sample_kernel, dim3(unsigned(n_rows)), dim3(kThreads), 0, stream, ids, logits, ld,
                       work, int(n_vocab), rows, masks);
}

}  // namespace tailor::cuda
