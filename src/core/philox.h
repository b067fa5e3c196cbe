// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011, section 4). The output is a pure function of (key, counter): a sampler keyed by
// a request's seed and counted by its step draws the same value on every backend and on every replay of the
// step, with no state to carry between steps (a CUDA graph captures nothing that changes).
// Host and device: this header is C++17 and compiles under nvcc as well as the host compiler.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TAILOR_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TAILOR_HOST_DEVICE inline
#endif

namespace tailor {

struct Philox4x32 {
  uint32_t v[4];
};

// One Philox4x32 block with 10 rounds: counter ctr (4 words), key (2 words). Checked against the Random123
// known-answer vectors (tests/core).
TAILOR_HOST_DEVICE Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                            uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt(3) - 1)
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return {{c0, c1, c2, c3}};
}

// A uniform double in [0, 1) with 53 random bits for (seed, step): key = seed, counter = (step, 0).
TAILOR_HOST_DEVICE double philox_uniform(uint64_t seed, uint64_t step) {
  const Philox4x32 r =
      philox4x32_10(uint32_t(step), uint32_t(step >> 32), 0u, 0u, uint32_t(seed), uint32_t(seed >> 32));
  const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
  return double(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

}  // namespace tailor
