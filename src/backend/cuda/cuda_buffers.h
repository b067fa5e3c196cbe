// RAII owners for the CUDA runner's memory: one device arena per purpose (weights, KV cache, scratch), pinned
// host buffers, and the weight uploader (mmap -> pinned staging -> GPU, converted and placed on the GPU).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "io/safetensors.h"

namespace tailor::cuda {

// A device allocation carved into 256-byte aligned pieces. Sizes are summed first (reserve), then one
// cudaMalloc.
class DeviceArena {
 public:
  DeviceArena() = default;
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  ~DeviceArena();
  // Phase 1 (before allocate): counts bytes and returns nullptr. Phase 2: returns the piece.
  void* take(uint64_t bytes);
  Status allocate(const std::string& what);  // switches to phase 2; error names `what` and the size
  uint64_t size() const { return size_; }
  bool allocated() const { return base_ != nullptr; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0, used_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();
  Status allocate(uint64_t bytes, const std::string& what);
  uint8_t* data() const { return p_; }
  uint64_t size() const { return n_; }

 private:
  uint8_t* p_ = nullptr;
  uint64_t n_ = 0;
};

// Streams tensors from the mmap to the GPU through two pinned staging buffers (host copy of one overlaps the
// transfer of the other). Tensors already in the target dtype are copied straight into place (2-D copies for
// interleaved rows); others go through a device staging buffer and a conversion kernel.
class WeightUploader {
 public:
  WeightUploader() = default;
  WeightUploader(const WeightUploader&) = delete;
  WeightUploader& operator=(const WeightUploader&) = delete;
  ~WeightUploader();
  Status init(cudaStream_t stream, uint64_t total_bytes, bool progress);
  // Writes source row r of `t` ([rows, cols]) to dst row r * row_step + row_off (dst rows have cols elements
  // of dst_t).
  Status upload(const SafeTensor& t, void* dst, DType dst_t, int64_t row_step, int64_t row_off);
  // Waits for the transfers; returns the count of values that overflowed f16.
  Result<uint64_t> finish();

 private:
  static constexpr uint64_t kStage = 32ull << 20;
  cudaStream_t stream_ = nullptr;
  PinnedBuffer pinned_[2];
  void* dev_stage_[2] = {nullptr, nullptr};
  cudaEvent_t done_[2] = {nullptr, nullptr};
  unsigned long long* overflow_ = nullptr;
  int next_ = 0;
  uint64_t total_ = 0, done_bytes_ = 0;
  bool progress_ = false;
  int last_pct_ = -1;
};

// Message for a failed CUDA call: "<what>: <error name>: <description>".
Status cuda_status(cudaError_t e, const std::string& what);

}  // namespace tailor::cuda
