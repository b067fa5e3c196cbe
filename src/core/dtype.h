// Element types and exact conversions. The enum leaves room for block-quantized types (wave 2: q8_0, q4_k),
// whose "element" is a block: use dtype_row_bytes() rather than multiplying by dtype_size().
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace tailor {

enum class DType : uint8_t {
  f32 = 0,
  f16,
  bf16,
  f64,
  i8,
  i16,
  i32,
  i64,
  u8,
  boolean,
  // Block-quantized (GGUF) types: declared now so plans and tensor tables can name them.
  q8_0,
  q4_0,
  q4_k,
  q6_k,
};

struct DTypeInfo {
  const char* name;      // tailor's name ("bf16")
  const char* st_name;   // safetensors' name ("BF16"), nullptr if none
  uint32_t block_elems;  // elements per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
  bool is_float;
};

const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) {
  return dtype_info(t).name;
}
inline size_t dtype_size(DType t) {
  return dtype_info(t).block_bytes;
}  // for block_elems == 1
// Bytes for n elements (n must be a multiple of the block size for quantized types).
inline uint64_t dtype_row_bytes(DType t, uint64_t n) {
  const auto& i = dtype_info(t);
  return n / i.block_elems * i.block_bytes;
}
std::optional<DType> dtype_from_name(std::string_view name);            // "f32", "bf16", "float16", ...
std::optional<DType> dtype_from_safetensors(std::string_view st_name);  // "F32", "BF16", ...

// ---- scalar conversions (exact; round-to-nearest-even; NaN stays NaN, ±inf and subnormals kept) ----
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t bits_from_f32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_f32(uint16_t h) {
  return f32_from_bits(uint32_t(h) << 16);
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = bits_from_f32(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN, keep sign
  u += 0x7fffu + ((u >> 16) & 1u);                                         // round to nearest even
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Bulk conversions (vectorised where the CPU allows). n elements.
void convert_row(const void* src, DType src_t, void* dst, DType dst_t, size_t n);
// Reads element i of a plain-typed buffer as float.
float load_as_f32(const void* p, DType t, size_t i);

}  // namespace tailor
