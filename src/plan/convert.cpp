// Range statistics and guarded conversions. Both run over mmapped weights (GBs), so they are split over the
// thread pool and the inner loops are written to vectorise (AVX2/F16C variants picked at run time).
#include "plan/convert.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "plan/precision.h"

namespace tailor {

namespace {

constexpr int64_t kChunk = int64_t(1) << 20;  // elements per parallel task

struct Partial {
  uint32_t max_bits = 0;  // sign-cleared bits of the largest finite |x|
  uint64_t nonfinite = 0;
};

// |x| order equals the order of the sign-cleared bit patterns for IEEE floats; exponent all-ones = Inf/NaN.
// The common case is one max-reduction (vectorises); only a buffer holding Inf/NaN takes the second, scalar
// pass that separates them out.
template <class U, U kAbsMask>
inline __attribute__((always_inline)) U max_bits(const U* p, int64_t n) {
  U m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const U a = U(p[i] & kAbsMask);
    m = m > a ? m : a;
  }
  return m;
}

template <class U, U kAbsMask>
__attribute__((target("avx2"))) U max_bits_avx2(const U* p, int64_t n) {
  return max_bits<U, kAbsMask>(p, n);
}

template <class U, U kAbsMask, U kExpMask>
Partial scan(const U* p, int64_t n) {
  const U m = cpu_features().avx2 ? max_bits_avx2<U, kAbsMask>(p, n) : max_bits<U, kAbsMask>(p, n);
  if (m < kExpMask) return {uint32_t(m), 0};
  Partial r;
  for (int64_t i = 0; i < n; ++i) {
    const U a = U(p[i] & kAbsMask);
    if (a >= kExpMask) {
      ++r.nonfinite;
    } else if (a > r.max_bits) {
      r.max_bits = a;
    }
  }
  return r;
}

Partial scan_any(const void* data, DType t, int64_t begin, int64_t len) {
  switch (t) {
    case DType::f32:
      return scan<uint32_t, 0x7fffffffu, 0x7f800000u>(static_cast<const uint32_t*>(data) + begin, len);
    case DType::bf16:
      return scan<uint16_t, 0x7fff, 0x7f80>(static_cast<const uint16_t*>(data) + begin, len);
    case DType::f16:
      return scan<uint16_t, 0x7fff, 0x7c00>(static_cast<const uint16_t*>(data) + begin, len);
    default:
      return {};
  }
}

float bits_to_abs(uint32_t bits, DType t) {
  switch (t) {
    case DType::f32:
      return f32_from_bits(bits);
    case DType::bf16:
      return bf16_to_f32(uint16_t(bits));
    case DType::f16:
      return f16_to_f32(uint16_t(bits));
    default:
      return 0;
  }
}

// ---- conversion kernels: [begin, begin+n) of src into dst ----
__attribute__((target("avx2,f16c"))) void bf16_to_f16_f16c(const uint16_t* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m256 f = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) d[i] = f32_to_f16(bf16_to_f32(s[i]));
}

__attribute__((target("avx2,f16c"))) void f32_to_f16_f16c(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) d[i] = f32_to_f16(s[i]);
}

__attribute__((target("avx2,f16c"))) void f16_to_f32_f16c(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}

void convert_range(const uint8_t* src, DType st, uint8_t* dst, DType dt, int64_t begin, int64_t n) {
  const bool f16c = cpu_features().avx2 && cpu_features().f16c;
  const uint16_t* s16 = reinterpret_cast<const uint16_t*>(src) + begin;
  const float* s32 = reinterpret_cast<const float*>(src) + begin;
  uint16_t* d16 = reinterpret_cast<uint16_t*>(dst) + begin;
  float* d32 = reinterpret_cast<float*>(dst) + begin;
  if (st == dt) {
    std::copy_n(src + begin * int64_t(dtype_size(st)), n * int64_t(dtype_size(st)),
                dst + begin * int64_t(dtype_size(dt)));
  } else if (st == DType::bf16 && dt == DType::f16 && f16c) {
    bf16_to_f16_f16c(s16, d16, n);
  } else if (st == DType::f32 && dt == DType::f16 && f16c) {
    f32_to_f16_f16c(s32, d16, n);
  } else if (st == DType::f16 && dt == DType::f32 && f16c) {
    f16_to_f32_f16c(s16, d32, n);
  } else if (st == DType::bf16 && dt == DType::f32) {
    for (int64_t i = 0; i < n; ++i) d32[i] = bf16_to_f32(s16[i]);  // inline shifts: vectorises
  } else if (st == DType::f32 && dt == DType::bf16) {
    for (int64_t i = 0; i < n; ++i) d16[i] = f32_to_bf16(s32[i]);
  } else {
    convert_row(src + begin * int64_t(dtype_size(st)), st, dst + begin * int64_t(dtype_size(dt)), dt,
                size_t(n));
  }
}

bool is_float_storage(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

float dtype_max(DType t) {
  switch (t) {
    case DType::f16:
      return kF16Max;
    case DType::bf16:
      return 3.3895314e38f;
    default:
      return 3.4028235e38f;
  }
}

Status out_of_range_error(const std::string& who, float max_abs, DType target) {
  return unsupported(cat(who, ": max |w| = ", max_abs, " exceeds the ", dtype_name(target),
                         " range (largest finite ", dtype_max(target),
                         "): converting would produce Inf. Keep this tensor in a wider dtype "
                         "(the Plan does so when it has checked the weights)"));
}

}  // namespace

Result<RangeStats> range_stats(const void* data, DType t, uint64_t n) {
  if (!is_float_storage(t))
    return invalid_argument(cat("range_stats: dtype ", dtype_name(t), " is not f32/f16/bf16"));
  if (n > 0 && !data) return invalid_argument("range_stats: null data");
  const int64_t chunks = int64_t((n + kChunk - 1) / kChunk);
  std::vector<Partial> parts(size_t(std::max<int64_t>(chunks, 1)));
  auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b = c * kChunk;
      parts[size_t(c)] = scan_any(data, t, b, std::min<int64_t>(kChunk, int64_t(n) - b));
    }
  };
  if (chunks <= 1) {
    run(0, chunks);
  } else {
    ThreadPool::global().parallel_for(chunks, 1, run);
  }
  RangeStats r;
  uint32_t m = 0;
  for (const Partial& p : parts) {
    m = std::max(m, p.max_bits);
    r.n_nonfinite += p.nonfinite;
  }
  r.max_abs = bits_to_abs(m, t);
  return r;
}

Result<RangeStats> convert_into(const SafeTensor& src, DType target, void* dst, uint64_t dst_bytes) {
  const std::string who = cat("tensor \"", src.name, "\"");
  if (!is_float_storage(src.dtype))
    return unsupported(
        cat(who, ": stored as ", dtype_name(src.dtype), "; only f32/f16/bf16 weights can be converted"));
  if (!is_float_storage(target))
    return unsupported(cat(who, ": cannot convert to ", dtype_name(target), " (targets: f32, f16, bf16)"));
  const uint64_t n = uint64_t(src.shape.numel());
  if (src.nbytes != dtype_row_bytes(src.dtype, n) || (n > 0 && !src.data))
    return corrupt(cat(who, ": ", src.nbytes, " bytes for shape ", src.shape.str(), " of ",
                       dtype_name(src.dtype), " (expected ", dtype_row_bytes(src.dtype, n), ")"));
  if (dst_bytes < dtype_row_bytes(target, n) || (n > 0 && !dst))
    return invalid_argument(cat(who, ": destination holds ", dst_bytes, " bytes, the ", dtype_name(target),
                                " copy needs ", dtype_row_bytes(target, n)));

  TAILOR_ASSIGN_OR_RETURN(RangeStats rs, range_stats(src.data, src.dtype, n));
  if (rs.n_nonfinite > 0)
    return corrupt(
        cat(who, ": ", rs.n_nonfinite, " of ", n, " stored values are NaN or Inf (corrupt checkpoint?)"));
  if (rs.max_abs > dtype_max(target)) return out_of_range_error(who, rs.max_abs, target);

  uint8_t* out = static_cast<uint8_t*>(dst);
  const int64_t chunks = int64_t((n + kChunk - 1) / kChunk);
  auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b = c * kChunk;
      convert_range(src.data, src.dtype, out, target, b, std::min<int64_t>(kChunk, int64_t(n) - b));
    }
  };
  if (chunks > 1) {
    ThreadPool::global().parallel_for(chunks, 1, run);
  } else {
    run(0, chunks);
  }
  // Values within max_abs <= the target's largest finite value cannot round to Inf (round-to-nearest-even
  // rounds to the largest finite value first); this re-check only guards that reasoning, near the limit.
  if (target != DType::f32 && rs.max_abs > dtype_max(target) * 0.99f) {
    TAILOR_ASSIGN_OR_RETURN(RangeStats after, range_stats(out, target, n));
    if (after.n_nonfinite > 0) return out_of_range_error(who, rs.max_abs, target);
  }
  return rs;
}

Result<ConvertedTensor> convert_for_storage(const SafeTensor& src, DType target) {
  if (!is_float_storage(target))
    return unsupported(cat("tensor \"", src.name, "\": cannot convert to ", dtype_name(target),
                           " (targets: f32, f16, bf16)"));
  ConvertedTensor out;
  out.name = src.name;
  out.dtype = target;
  out.shape = src.shape;
  out.nbytes = dtype_row_bytes(target, uint64_t(src.shape.numel()));
  const size_t alloc = size_t((std::max<uint64_t>(out.nbytes, 1) + 63) / 64 * 64);
  out.data = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(std::aligned_alloc(64, alloc)), std::free);
  if (!out.data)
    return out_of_memory(cat("tensor \"", src.name, "\": cannot allocate ", alloc, " bytes for the ",
                             dtype_name(target), " copy"));
  TAILOR_ASSIGN_OR_RETURN(RangeStats rs, convert_into(src, target, out.data.get(), out.nbytes));
  out.max_abs = rs.max_abs;
  return out;
}

Status check_finite(std::span<const float> x, const std::string& where) {
  const uint32_t* u = reinterpret_cast<const uint32_t*>(x.data());
  const size_t n = x.size();
  uint32_t any = 0;
  for (size_t i = 0; i < n; ++i) any |= uint32_t((u[i] & 0x7f800000u) == 0x7f800000u);
  if (!any) return {};
  uint64_t n_nan = 0, n_inf = 0;
  size_t first = n;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (std::isfinite(v)) continue;
    if (first == n) first = i;
    (std::isnan(v) ? n_nan : n_inf)++;
  }
  return Status(
      ErrorCode::unsupported,
      cat("non-finite activations in ", where, ": ", n_inf + n_nan, " of ", n, " values (", n_inf, " Inf, ",
          n_nan, " NaN; first at index ", first, " = ", x[first],
          "). With f16 weights or activations this is f16 overflow (|x| > 65504): rerun with --dtype bf16 "
          "(or f32); otherwise the weights or inputs are broken"));
}

}  // namespace tailor
