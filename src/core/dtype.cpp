#include "core/dtype.h"

#include <cmath>

#include "core/status.h"

namespace tailor {

namespace {
const DTypeInfo kInfo[] = {
    {"f32", "F32", 1, 4, true},         {"f16", "F16", 1, 2, true},         {"bf16", "BF16", 1, 2, true},
    {"f64", "F64", 1, 8, true},         {"i8", "I8", 1, 1, false},          {"i16", "I16", 1, 2, false},
    {"i32", "I32", 1, 4, false},        {"i64", "I64", 1, 8, false},        {"u8", "U8", 1, 1, false},
    {"bool", "BOOL", 1, 1, false},      {"q8_0", nullptr, 32, 34, false},   {"q4_0", nullptr, 32, 18, false},
    {"q4_k", nullptr, 256, 144, false}, {"q6_k", nullptr, 256, 210, false},
};
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  return kInfo[static_cast<int>(t)];
}

std::optional<DType> dtype_from_name(std::string_view n) {
  if (n == "f32" || n == "float32" || n == "fp32" || n == "float") return DType::f32;
  if (n == "f16" || n == "float16" || n == "fp16" || n == "half") return DType::f16;
  if (n == "bf16" || n == "bfloat16") return DType::bf16;
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (n == kInfo[i].name) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view n) {
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (kInfo[i].st_name && n == kInfo[i].st_name) return static_cast<DType>(i);
  return std::nullopt;
}

// IEEE binary16 <-> binary32 by bit manipulation (no reliance on F16C so every CPU gets identical results).
float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN (payload kept)
  if (exp != 0) return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return f32_from_bits(sign);  // ±0
  // Subnormal: normalise.
  int e = -1;
  do {
    ++e;
    mant <<= 1;
  } while ((mant & 0x400u) == 0);
  mant &= 0x3ffu;
  return f32_from_bits(sign | uint32_t(112 - e) << 23 | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_from_f32(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN stays NaN (quiet)
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: overflow to inf
  if (a >= 0x38800000u) {                                 // normal f16 range (>= 2^-14)
    const uint32_t mant_odd = (a >> 13) & 1u;
    const uint32_t r = a + 0xfffu + mant_odd;  // round to nearest even at bit 13
    return uint16_t(sign | (((r >> 13) - (112u << 10)) & 0x7fffu));
  }
  if (a < 0x33000000u) return sign;  // < 2^-25: rounds to ±0 (exactly 2^-25 is a tie to even -> 0)
  // Subnormal f16: value = m * 2^-24, m in [0, 1024).
  const uint32_t e = a >> 23;  // biased exponent, 102..112
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;  // bits to drop so the result has unit 2^-24
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  uint32_t res = q + ((rem > half || (rem == half && (q & 1u))) ? 1 : 0);
  return uint16_t(sign | res);
}

float load_as_f32(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::f32:
      return static_cast<const float*>(p)[i];
    case DType::f16:
      return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::bf16:
      return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::f64:
      return float(static_cast<const double*>(p)[i]);
    default:
      TAILOR_CHECK(false) << "load_as_f32: unsupported dtype " << dtype_name(t);
  }
  return 0;
}

void convert_row(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (st == dt) {
    std::memcpy(dst, src, dtype_row_bytes(st, n));
    return;
  }
  switch (dt) {
    case DType::f32: {
      float* d = static_cast<float*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = load_as_f32(src, st, i);
      return;
    }
    case DType::f16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(load_as_f32(src, st, i));
      return;
    }
    case DType::bf16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(load_as_f32(src, st, i));
      return;
    }
    default:
      TAILOR_CHECK(false) << "convert_row: unsupported target dtype " << dtype_name(dt);
  }
}

}  // namespace tailor
