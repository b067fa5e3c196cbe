// y = x · wᵀ with weights in their stored dtype, f32 accumulation, run-time ISA dispatch.
// Tiles of up to 4 tokens × 4 weight rows: each converted weight vector is used by 4 tokens, each x vector by
// 4 rows, so prefill is not bound on conversions and decode (m = 1) streams the weights once.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/ops.h"
#include "core/cpu_features.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace tailor::cpu {

namespace {

using TileFn = void (*)(const float* x, int64_t ldx, int mt, const void* w, int64_t ldw, int nt, int64_t k,
                        float* out);  // out[mt][4]

template <DType WT>
inline float w_scalar(const void* w, int64_t i) {
  if constexpr (WT == DType::f32) return static_cast<const float*>(w)[i];
  if constexpr (WT == DType::bf16) return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
  if constexpr (WT == DType::f16) return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
  return 0;
}

template <DType WT>
void tile_scalar(const float* x, int64_t ldx, int mt, const void* w, int64_t ldw, int nt, int64_t k,
                 float* out) {
  for (int i = 0; i < mt; ++i)
    for (int j = 0; j < nt; ++j) {
      const char* wr = static_cast<const char*>(w) + dtype_row_bytes(WT, uint64_t(j * ldw));
      float s = 0;
      for (int64_t c = 0; c < k; ++c) s += x[i * ldx + c] * w_scalar<WT>(wr, c);
      out[i * 4 + j] = s;
    }
}

#if defined(__x86_64__)
template <DType WT>
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const void* w, int64_t i) {
  if constexpr (WT == DType::f32) return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
  if constexpr (WT == DType::bf16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType WT>
__attribute__((target("avx2,fma,f16c"))) void tile_avx2(const float* x, int64_t ldx, int mt, const void* w,
                                                        int64_t ldw, int nt, int64_t k, float* out) {
  const int64_t kv = k / 8 * 8;
  __m256 acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_ps();
  const char* wrow[4];
  for (int j = 0; j < 4; ++j)
    wrow[j] = static_cast<const char*>(w) + dtype_row_bytes(WT, uint64_t(std::min(j, nt - 1) * ldw));
  for (int64_t c = 0; c < kv; c += 8) {
    __m256 wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = load8<WT>(wrow[j], c);
    for (int i = 0; i < 4; ++i) {
      if (i >= mt) break;
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + c);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < mt; ++i)
    for (int j = 0; j < nt; ++j) {
      float s = hsum8(acc[i][j]);
      for (int64_t c = kv; c < k; ++c) s += x[i * ldx + c] * w_scalar<WT>(wrow[j], c);
      out[i * 4 + j] = s;
    }
}

template <DType WT>
__attribute__((target("avx512f,avx512bw"))) inline __m512 load16(const void* w, int64_t i) {
  if constexpr (WT == DType::f32) return _mm512_loadu_ps(static_cast<const float*>(w) + i);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
  if constexpr (WT == DType::bf16)
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

template <DType WT>
__attribute__((target("avx512f,avx512bw"))) void tile_avx512(const float* x, int64_t ldx, int mt,
                                                             const void* w, int64_t ldw, int nt, int64_t k,
                                                             float* out) {
  const int64_t kv = k / 16 * 16;
  __m512 acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  const char* wrow[4];
  for (int j = 0; j < 4; ++j)
    wrow[j] = static_cast<const char*>(w) + dtype_row_bytes(WT, uint64_t(std::min(j, nt - 1) * ldw));
  for (int64_t c = 0; c < kv; c += 16) {
    __m512 wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = load16<WT>(wrow[j], c);
    for (int i = 0; i < 4; ++i) {
      if (i >= mt) break;
      const __m512 xv = _mm512_loadu_ps(x + i * ldx + c);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < mt; ++i)
    for (int j = 0; j < nt; ++j) {
      float s = _mm512_reduce_add_ps(acc[i][j]);
      for (int64_t c = kv; c < k; ++c) s += x[i * ldx + c] * w_scalar<WT>(wrow[j], c);
      out[i * 4 + j] = s;
    }
}
#endif

// bf16 weights on CPUs with AVX512_BF16: x is rounded to bf16 once per matmul and vdpbf16ps multiplies 32
// pairs per instruction with f32 accumulation (the plan reports this compute dtype as bf16).
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void tile_avx512bf16(
    const uint16_t* xb, int64_t ldx, int mt, const uint16_t* w, int64_t ldw, int nt, int64_t k, float* out) {
  const int64_t kv = k / 32 * 32;
  __m512 acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  const uint16_t* wrow[4];
  for (int j = 0; j < 4; ++j) wrow[j] = w + std::min(j, nt - 1) * ldw;
  for (int64_t c = 0; c < kv; c += 32) {
    __m512bh wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = (__m512bh)_mm512_loadu_si512(wrow[j] + c);
    for (int i = 0; i < 4; ++i) {
      if (i >= mt) break;
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(xb + i * ldx + c);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv, wv[j]);
    }
  }
  for (int i = 0; i < mt; ++i)
    for (int j = 0; j < nt; ++j) {
      float s = _mm512_reduce_add_ps(acc[i][j]);
      for (int64_t c = kv; c < k; ++c) s += bf16_to_f32(xb[i * ldx + c]) * bf16_to_f32(wrow[j][c]);
      out[i * 4 + j] = s;
    }
}

#endif

template <DType WT>
TileFn pick_tile() {
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (f.avx512f && f.avx512bw) return tile_avx512<WT>;
  if (f.avx2 && f.fma && f.f16c) return tile_avx2<WT>;
#endif
  return tile_scalar<WT>;
}

TileFn tile_for(DType wt) {
  static const TileFn f32 = pick_tile<DType::f32>(), bf16 = pick_tile<DType::bf16>(),
                      f16 = pick_tile<DType::f16>();
  switch (wt) {
    case DType::f32:
      return f32;
    case DType::bf16:
      return bf16;
    case DType::f16:
      return f16;
    default:
      TAILOR_CHECK(false) << "matmul: unsupported weight dtype " << dtype_name(wt);
  }
  return nullptr;
}

}  // namespace

namespace {

// Work unit: a chunk of 16 weight-row blocks (64 rows, ~100 KB of bf16 at k = 896) kept hot in L2 while every
// 4-token block of x passes over it; at m = 1 this streams each weight byte exactly once. `tile(i0, j0, mt,
// nt, out)` computes out[mt][4] for tokens i0.. and weight rows j0..
template <class Tile>
void run_tiles(float* y, const float* bias, int64_t m, int64_t n, const Tile& tile) {
  const int64_t n_blocks = (n + 3) / 4;
  constexpr int64_t kChunk = 16;
  ThreadPool::global().parallel_for(n_blocks, 2, [&](int64_t b0, int64_t b1) {
    float out[16];
    for (int64_t c0 = b0; c0 < b1; c0 += kChunk) {
      const int64_t c1 = std::min(b1, c0 + kChunk);
      for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const int mt = int(std::min<int64_t>(4, m - i0));
        for (int64_t b = c0; b < c1; ++b) {
          const int64_t j0 = b * 4;
          const int nt = int(std::min<int64_t>(4, n - j0));
          tile(i0, j0, mt, nt, out);
          for (int i = 0; i < mt; ++i)
            for (int j = 0; j < nt; ++j)
              y[(i0 + i) * n + j0 + j] = out[i * 4 + j] + (bias ? bias[j0 + j] : 0.0f);
        }
      }
    }
  });
}

bool use_bf16_dot() {
#if defined(__x86_64__)
  static const bool on = cpu_features().avx512_bf16 && cpu_features().avx512bw && cpu_features().avx512vl;
  return on;
#else
  return false;
#endif
}

}  // namespace

bool matmul_rounds_x_to_bf16(DType wt) {
  return wt == DType::bf16 && use_bf16_dot();
}

void matmul(float* y, const float* x, const void* w, DType wt, const float* bias, int64_t m, int64_t n,
            int64_t k) {
#if defined(__x86_64__)
  if (wt == DType::bf16 && use_bf16_dot()) {
    thread_local std::vector<uint16_t> xb;  // x rounded to bf16 once, reused by every weight row
    xb.resize(size_t(m * k));
    convert_row(x, DType::f32, xb.data(), DType::bf16, size_t(m * k));
    const uint16_t* wb = static_cast<const uint16_t*>(w);
    const uint16_t* xp = xb.data();  // the caller's buffer: workers must not name their own thread_local
    run_tiles(y, bias, m, n, [&](int64_t i0, int64_t j0, int mt, int nt, float* out) {
      tile_avx512bf16(xp + i0 * k, k, mt, wb + j0 * k, k, nt, k, out);
    });
    return;
  }
#endif
  const TileFn tile = tile_for(wt);
  run_tiles(y, bias, m, n, [&](int64_t i0, int64_t j0, int mt, int nt, float* out) {
    tile(x + i0 * k, k, mt, static_cast<const char*>(w) + dtype_row_bytes(wt, uint64_t(j0 * k)), k, nt, k,
         out);
  });
}

}  // namespace tailor::cpu
