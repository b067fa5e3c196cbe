#include "backend/cuda/common.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/rope_head.cuh"

namespace tailor::cuda {

namespace {

constexpr int kWarps = 8;

// grid: (n_tok, ceil(heads / kWarps)); one warp per head (q heads, then k heads, then v heads).
// The math per head: rope_head.cuh.
template <class QT, class KT>
__global__ void __launch_bounds__(kWarps * 32)
    rope_qkv_kernel(QT* __restrict__ q_out, const float* __restrict__ qkv, const float* __restrict__ bias,
                    const float* __restrict__ q_norm, const float* __restrict__ k_norm, float eps,
                    const int32_t* __restrict__ pos, const int32_t* __restrict__ slots,
                    const float* __restrict__ inv_freq, KT* __restrict__ cache_k, KT* __restrict__ cache_v,
                    int64_t capacity, int64_t slot_stride, int n_head, int n_head_kv, int head_dim) {
  pdl_trigger();
  pdl_wait();
  const int lane = threadIdx.x & 31;
  const int head = blockIdx.y * kWarps + (threadIdx.x >> 5);
  const int n_heads_all = n_head + 2 * n_head_kv;
  if (head >= n_heads_all) return;
  const int64_t t = blockIdx.x;
  const int64_t row_len = int64_t(n_heads_all) * head_dim;
  const float* src = qkv + t * row_len + int64_t(head) * head_dim;
  const float* b = bias ? bias + int64_t(head) * head_dim : nullptr;
  const bool is_q = head < n_head, is_k = !is_q && head < n_head + n_head_kv;
  const float* nw = is_q ? q_norm : (is_k ? k_norm : nullptr);
  const int32_t p = pos[t];
  float lo[kRopeMaxPairsPerLane], hi[kRopeMaxPairsPerLane];
  rope_head(src, b, nw, eps, p, inv_freq, head_dim, is_q || is_k, lane, lo, hi);
  if (is_q) {
    store_head(q_out + (t * n_head + head) * int64_t(head_dim), lo, hi, head_dim, lane);
    return;
  }
  const int kvh = is_k ? head - n_head : head - n_head - n_head_kv;
  KT* base = (is_k ? cache_k : cache_v) + int64_t(slots[t]) * slot_stride;
  store_head(base + (int64_t(kvh) * capacity + p) * head_dim, lo, hi, head_dim, lane);
}

}  // namespace

cudaError_t rope_qkv_store(void* q_out, DType q_t, const float* qkv, const float* bias, const float* q_norm,
                           const float* k_norm, float eps, const int32_t* pos, const int32_t* slots,
                           const float* inv_freq, const KvCacheView& cache, int64_t n_tok, int n_head,
                           int n_head_kv, int head_dim, cudaStream_t stream) {
  if (n_tok <= 0) return cudaSuccess;
  if (head_dim % 2 != 0 || head_dim > 2 * 32 * kRopeMaxPairsPerLane || n_head <= 0 || n_head_kv <= 0)
    return cudaErrorInvalidValue;
  const dim3 grid(unsigned(n_tok), unsigned(ceil_div(n_head + 2 * n_head_kv, kWarps)));
  return dispatch_float(q_t, [&](auto qtag) {
    using QT = decltype(qtag);
    return dispatch_float(cache.t, [&](auto ktag) {
      using KT = decltype(ktag);
      return launch_kernel(rope_qkv_kernel<QT, KT>, grid, dim3(kWarps * 32), 0, stream,
                           static_cast<QT*>(q_out), qkv, bias, q_norm, k_norm, eps, pos, slots, inv_freq,
                           static_cast<KT*>(cache.k), static_cast<KT*>(cache.v), cache.capacity,
                           cache.slot_stride, n_head, n_head_kv, head_dim);
    });
  });
}

}  // namespace tailor::cuda
