// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors: counter, key -> output), and the
// uniform built on it.
#include <gtest/gtest.h>

#include <set>

#include "core/philox.h"

namespace tailor {
namespace {

TEST(Philox, KnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const Philox4x32 r = philox4x32_10(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
  }
}

TEST(Philox, UniformIsAFunctionOfSeedAndStepInZeroOne) {
  std::set<double> seen;
  double sum = 0;
  const int n = 100000;
  for (int s = 0; s < n; ++s) {
    const double u = philox_uniform(42, uint64_t(s));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(u, philox_uniform(42, uint64_t(s)));
    seen.insert(u);
    sum += u;
  }
  EXPECT_EQ(seen.size(), size_t(n));
  EXPECT_NEAR(sum / n, 0.5, 0.005);  // sd of the mean: 0.29 / sqrt(1e5) ~ 0.001
  EXPECT_NE(philox_uniform(1, 0), philox_uniform(2, 0));
  EXPECT_NE(philox_uniform(1ull << 32, 0), philox_uniform(1, 0));  // both halves of the seed count
  EXPECT_NE(philox_uniform(1, 1ull << 32), philox_uniform(1, 0));  // and of the step
}

}  // namespace
}  // namespace tailor
