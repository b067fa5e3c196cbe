#include "backend/cuda/cuda_buffers.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include "backend/cuda/convert.cuh"
#include "core/thread_pool.h"

namespace tailor::cuda {

Status cuda_status(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return {};
  if (e == cudaErrorMemoryAllocation)
    return out_of_memory(
        cat(what, ": out of GPU memory; use a smaller --ctx, fewer slots, or the CPU backend"));
  return internal_error(cat(what, ": CUDA reported ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
}

DeviceArena::~DeviceArena() {
  if (base_) cudaFree(base_);
}

void* DeviceArena::take(uint64_t bytes) {
  const uint64_t n = (bytes + 255) & ~uint64_t(255);
  if (!base_) {
    size_ += n;
    return nullptr;
  }
  TAILOR_CHECK(used_ + n <= size_) << "device arena overflow: " << used_ + n << " > " << size_;
  void* p = base_ + used_;
  used_ += n;
  return p;
}

Status DeviceArena::allocate(const std::string& what) {
  if (size_ == 0) size_ = 256;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, size_);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return out_of_memory(cat(what, ": cannot allocate ", size_ / (1 << 20), " MiB on the GPU (",
                             free_b / (1 << 20), " MiB free of ", total_b / (1 << 20),
                             "); use a smaller --ctx, fewer slots, a smaller dtype, or the CPU backend"));
  }
  base_ = static_cast<uint8_t*>(p);
  used_ = 0;
  return {};
}

PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}

Status PinnedBuffer::allocate(uint64_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, std::max<uint64_t>(bytes, 64));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return out_of_memory(cat(what, ": cannot allocate ", bytes >> 20, " MiB of pinned host memory"));
  }
  p_ = static_cast<uint8_t*>(p);
  n_ = bytes;
  return {};
}

WeightUploader::~WeightUploader() {
  for (int i = 0; i < 2; ++i) {
    if (done_[i]) {
      cudaEventSynchronize(done_[i]);
      cudaEventDestroy(done_[i]);
    }
    if (dev_stage_[i]) cudaFree(dev_stage_[i]);
  }
  if (overflow_) cudaFree(overflow_);
}

Status WeightUploader::init(cudaStream_t stream, uint64_t total_bytes, bool progress) {
  stream_ = stream;
  total_ = total_bytes;
  // A bar redrawn with \r only makes sense on a terminal; logs and pipes get nothing.
  progress_ = progress && total_bytes > (256ull << 20) && isatty(STDERR_FILENO);
  for (int i = 0; i < 2; ++i) {
    TAILOR_RETURN_IF_ERROR(pinned_[i].allocate(kStage, "weight upload staging"));
    TAILOR_RETURN_IF_ERROR(cuda_status(cudaMalloc(&dev_stage_[i], kStage), "weight upload staging"));
    TAILOR_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming), "event"));
  }
  TAILOR_RETURN_IF_ERROR(cuda_status(cudaMalloc(&overflow_, sizeof(unsigned long long)), "weight upload"));
  return cuda_status(cudaMemsetAsync(overflow_, 0, sizeof(unsigned long long), stream_), "weight upload");
}

Status WeightUploader::upload(const SafeTensor& t, void* dst, DType dst_t, int64_t row_step,
                              int64_t row_off) {
  const int64_t rows = t.shape.rank >= 2 ? t.shape[0] : 1;
  const int64_t cols = t.shape.numel() / std::max<int64_t>(rows, 1);
  const uint64_t src_row = dtype_row_bytes(t.dtype, uint64_t(cols)),
                 dst_row = dtype_row_bytes(dst_t, uint64_t(cols));
  if (src_row > kStage)
    return unsupported(
        cat("tensor \"", t.name, "\": rows of ", src_row, " bytes exceed the upload staging buffer"));
  const int64_t rows_per_chunk = int64_t(kStage / src_row);
  for (int64_t r0 = 0; r0 < rows; r0 += rows_per_chunk) {
    const int64_t n = std::min(rows_per_chunk, rows - r0);
    const int b = next_;
    next_ ^= 1;
    TAILOR_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(done_[b]), cat("uploading \"", t.name, "\"")));
    // Host copy out of the mmap (page faults on a cold file) in parallel slices.
    const uint8_t* src = t.data + uint64_t(r0) * src_row;
    const uint64_t bytes = uint64_t(n) * src_row;
    uint8_t* pin = pinned_[b].data();
    const int64_t slice = 4 << 20;
    ThreadPool::global().parallel_for(int64_t((bytes + slice - 1) / slice), 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        const uint64_t off = uint64_t(s) * slice, len = std::min<uint64_t>(slice, bytes - off);
        std::memcpy(pin + off, src + off, len);
      }
    });
    uint8_t* d = static_cast<uint8_t*>(dst) + uint64_t(r0 * row_step + row_off) * dst_row;
    cudaError_t e;
    if (t.dtype == dst_t) {
      e = cudaMemcpy2DAsync(d, size_t(row_step) * dst_row, pin, src_row, src_row, size_t(n),
                            cudaMemcpyHostToDevice, stream_);
    } else {
      e = cudaMemcpyAsync(dev_stage_[b], pin, bytes, cudaMemcpyHostToDevice, stream_);
      if (e == cudaSuccess)
        e = convert_rows(static_cast<uint8_t*>(dst) + uint64_t(r0 * row_step) * dst_row, dst_t, dev_stage_[b],
                         t.dtype, n, cols, row_step, row_off, overflow_, stream_);
    }
    if (e == cudaSuccess) e = cudaEventRecord(done_[b], stream_);
    TAILOR_RETURN_IF_ERROR(cuda_status(e, cat("uploading \"", t.name, "\"")));
    done_bytes_ += bytes;
    if (progress_) {
      const int pct = int(100 * done_bytes_ / std::max<uint64_t>(total_, 1));
      if (pct != last_pct_) {
        std::fprintf(stderr, "\rtailor: uploading weights to the GPU [%-40s] %3d%% of %.1f GB",
                     std::string(size_t(std::min(pct, 100) * 40 / 100), '#').c_str(), std::min(pct, 100),
                     double(total_) / 1e9);
        last_pct_ = pct;
      }
    }
  }
  return {};
}

Result<uint64_t> WeightUploader::finish() {
  unsigned long long n = 0;
  cudaError_t e = cudaMemcpyAsync(&n, overflow_, sizeof(n), cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
  if (progress_) std::fprintf(stderr, "\n");
  TAILOR_RETURN_IF_ERROR(cuda_status(e, "uploading weights"));
  return uint64_t(n);
}

}  // namespace tailor::cuda
