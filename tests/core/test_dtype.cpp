#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/dtype.h"

using namespace tailor;

// Every f16 bit pattern survives f16 -> f32 -> f16 exactly (NaNs stay NaN with their sign).
TEST(DType, AllF16PatternsRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    const uint16_t back = f32_to_f16(f);
    const bool is_nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
    if (is_nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_EQ(back & 0x8000u, h & 0x8000u);
      EXPECT_TRUE((back & 0x7c00u) == 0x7c00u && (back & 0x3ffu)) << h;
    } else {
      EXPECT_EQ(back, h) << "pattern 0x" << std::hex << h;
    }
  }
}

TEST(DType, AllBF16PatternsRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    const uint16_t back = f32_to_bf16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(back)));
      EXPECT_EQ(back & 0x8000u, h & 0x8000u);
    } else {
      EXPECT_EQ(back, h) << "pattern 0x" << std::hex << h;
    }
  }
}

// f16 decoding agrees with the compiler's _Float16 on every pattern (an independent reference).
TEST(DType, F16DecodeMatchesCompiler) {
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 x;
    const uint16_t hh = uint16_t(h);
    std::memcpy(&x, &hh, 2);
    const float ref = float(x);
    const float got = f16_to_f32(hh);
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      EXPECT_EQ(bits_from_f32(got), bits_from_f32(ref)) << h;
    }
  }
}

// f32 -> f16 rounding (nearest-even, subnormals, overflow to inf) agrees with the compiler on random and edge
// values.
TEST(DType, F32ToF16RoundingMatchesCompiler) {
  std::mt19937 rng(42);
  std::vector<float> vals = {0.0f,      -0.0f,    65504.0f,      65519.99f,          65520.0f,
                             -65520.0f, 1e-8f,    2.9802322e-8f, 5.96e-8f,           6.1035156e-5f,
                             6.1e-5f,   INFINITY, -INFINITY,     1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048};
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 200000; ++i) vals.push_back(f32_from_bits(any(rng)));
  // Values near f16's range, where rounding matters most.
  std::uniform_real_distribution<float> near(-70000.0f, 70000.0f), tiny(-1e-4f, 1e-4f);
  for (int i = 0; i < 100000; ++i) vals.push_back(near(rng)), vals.push_back(tiny(rng));
  for (float f : vals) {
    if (std::isnan(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    EXPECT_EQ(f32_to_f16(f), rb) << "value " << f;
  }
}

// bf16 rounding is round-to-nearest-even on the dropped 16 bits.
TEST(DType, F32ToBF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808000u)), 0x3f80u);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f818000u)), 0x3f82u);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808001u)), 0x3f81u);  // above tie
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7f7fffffu)), 0x7f80u);  // max float rounds to inf
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 100000; ++i) {
    const float f = f32_from_bits(any(rng));
    if (std::isnan(f)) continue;
    const float r = bf16_to_f32(f32_to_bf16(f));
    // The result is the nearer of the two bf16 neighbours (ties to even). Past the largest finite bf16 the
    // upper neighbour is infinity, which IEEE rounding treats as the value 2^128 when measuring distance.
    const uint32_t lo = bits_from_f32(f) & 0xffff0000u;
    const double a = f32_from_bits(lo);
    const float bf = f32_from_bits(lo + 0x10000u);
    const double b = std::isinf(bf) ? std::copysign(std::ldexp(1.0, 128), double(f)) : double(bf);
    const double da = std::fabs(double(f) - a), db = std::fabs(double(f) - b);
    const double want = da < db ? a : db < da ? b : ((lo >> 16) & 1 ? b : a);
    const double got = std::isinf(r) ? std::copysign(std::ldexp(1.0, 128), double(r)) : double(r);
    EXPECT_EQ(got, want) << f;
  }
}

TEST(DType, NamesParse) {
  EXPECT_EQ(dtype_from_name("bfloat16"), DType::bf16);
  EXPECT_EQ(dtype_from_name("f16"), DType::f16);
  EXPECT_EQ(dtype_from_safetensors("BF16"), DType::bf16);
  EXPECT_FALSE(dtype_from_name("f8").has_value());
  EXPECT_EQ(dtype_row_bytes(DType::q8_0, 64), 68u);  // quantized types are block-sized
}
