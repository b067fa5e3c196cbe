#include "cuda_test_util.h"

#include <cmath>

namespace tailor::cuda_test {

std::string gpu_unavailable_reason() {
  static const std::string reason = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return std::string(cudaGetErrorString(e));
    }
    if (n == 0) return std::string("the driver reports no GPU");
    return std::string();
  }();
  return reason;
}

DevBuf::DevBuf(size_t bytes) : n_(bytes) {
  if (cudaMalloc(&p_, std::max<size_t>(bytes, 16)) != cudaSuccess) {
    ADD_FAILURE() << "cudaMalloc(" << bytes << ") failed";
    p_ = nullptr;
    return;
  }
  poison();
}

DevBuf::DevBuf(const void* host, size_t bytes) : DevBuf(bytes) {
  if (p_ && bytes) cudaMemcpy(p_, host, bytes, cudaMemcpyHostToDevice);
}

DevBuf::~DevBuf() {
  if (p_) cudaFree(p_);
}

void DevBuf::poison() {
  if (p_) cudaMemset(p_, 0xff, std::max<size_t>(n_, 16));
}

std::vector<uint8_t> DevBuf::bytes() const {
  std::vector<uint8_t> b(n_);
  if (p_ && n_) cudaMemcpy(b.data(), p_, n_, cudaMemcpyDeviceToHost);
  return b;
}

Rng::Rng() : seed(std::random_device{}()), gen(seed) {}

std::vector<float> Rng::normal(size_t n, float stddev) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

int Rng::uniform_int(int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(gen);
}

std::vector<uint8_t> to_dtype(const std::vector<float>& v, DType t) {
  std::vector<uint8_t> b(dtype_row_bytes(t, v.size()));
  convert_row(v.data(), DType::f32, b.data(), t, v.size());
  return b;
}

std::vector<float> from_dtype(const void* p, DType t, size_t n) {
  std::vector<float> v(n);
  convert_row(p, t, v.data(), DType::f32, n);
  return v;
}

std::vector<float> round_to(const std::vector<float>& v, DType t) {
  const auto b = to_dtype(v, t);
  return from_dtype(b.data(), t, v.size());
}

double rel_err(const float* out, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  if (!std::isfinite(num)) return INFINITY;  // NaN (an unwritten output) never passes
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double tolerance(DType t) {
  return t == DType::f32 ? 1e-5 : 1e-2;
}

void sync_or_fail() {
  const cudaError_t e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaSuccess) << cudaGetErrorName(e) << ": " << cudaGetErrorString(e);
}

}  // namespace tailor::cuda_test
