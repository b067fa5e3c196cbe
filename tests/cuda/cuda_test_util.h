// Helpers for the CUDA tests: GPU availability (tests skip with a visible reason when there is none), device
// buffers, random inputs, dtype rounding, and the relative error ‖out − ref‖ / ‖ref‖ used as the pass
// criterion.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tailor::cuda_test {

// Empty when a CUDA device can be used, else why not.
std::string gpu_unavailable_reason();

#define TAILOR_REQUIRE_GPU()                                                \
  do {                                                                      \
    const std::string _why = ::tailor::cuda_test::gpu_unavailable_reason(); \
    if (!_why.empty()) GTEST_SKIP() << "no CUDA device: " << _why;          \
  } while (0)

// Device memory for a test; filled with 0xff bytes (NaN in f32/f16/bf16) so unwritten outputs fail the
// checks.
class DevBuf {
 public:
  explicit DevBuf(size_t bytes);
  DevBuf(const void* host, size_t bytes);
  ~DevBuf();
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t size() const { return n_; }
  std::vector<uint8_t> bytes() const;
  void poison();

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// A generator seeded from std::random_device: fresh inputs each run; the seed goes into failure messages.
struct Rng {
  uint32_t seed;
  std::mt19937 gen;
  Rng();
  std::vector<float> normal(size_t n, float stddev = 1.0f);
  int uniform_int(int lo, int hi);  // inclusive
};

std::vector<uint8_t> to_dtype(const std::vector<float>& v, DType t);
std::vector<float> from_dtype(const void* p, DType t, size_t n);
std::vector<float> round_to(const std::vector<float>& v, DType t);  // v as stored in t, read back
double rel_err(const float* out, const float* ref, size_t n);
inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  return rel_err(out.data(), ref.data(), std::min(out.size(), ref.size()));
}
// The pass threshold for results stored in (or computed from operands in) t: 1e-5 for f32, 1e-2 for f16/bf16.
double tolerance(DType t);

void sync_or_fail();  // cudaDeviceSynchronize + ASSERT-style failure text

}  // namespace tailor::cuda_test
