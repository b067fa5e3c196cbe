// Tensor views: a pointer plus shape, strides (in elements), dtype and device. Views never own memory;
// owners are the mmap (weights), the KV cache and per-step arenas.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"

namespace tailor {

enum class Device : uint8_t { cpu = 0, cuda };
inline const char* device_name(Device d) {
  return d == Device::cpu ? "cpu" : "cuda";
}

constexpr int kMaxDims = 4;

struct Shape {
  std::array<int64_t, kMaxDims> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    for (int64_t v : d) dims[rank++] = v;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  std::string str() const;  // "[896, 151936]"
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device = Device::cpu;
  Shape shape;
  std::array<int64_t, kMaxDims> strides{};  // in elements; contiguous row-major by default

  TensorView() = default;
  TensorView(void* d, DType t, Shape s, Device dev = Device::cpu) : data(d), dtype(t), device(dev), shape(s) {
    int64_t st = 1;
    for (int i = s.rank - 1; i >= 0; --i) {
      strides[i] = st;
      st *= s[i];
    }
  }
  int64_t numel() const { return shape.numel(); }
  uint64_t nbytes() const { return dtype_row_bytes(dtype, uint64_t(numel())); }
  bool contiguous() const {
    int64_t st = 1;
    for (int i = shape.rank - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != st) return false;
      st *= shape[i];
    }
    return true;
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // Row r of a contiguous 2-D view.
  void* row(int64_t r) const {
    return static_cast<char*>(data) + dtype_row_bytes(dtype, uint64_t(r * strides[0]));
  }
};

}  // namespace tailor
