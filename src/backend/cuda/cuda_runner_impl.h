// Internals of the CUDA runner, shared by its two sources: cuda_runner.cpp (set-up: sizes, buffers, weight
// upload; the factory) and cuda_runner_forward.cpp (the forward pass: products, layers, head, sampling
// inputs, eager and graph paths). Include from those two files only; the public interface is cuda_runner.h.
#pragma once

#include "backend/cuda/cuda_runner.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "backend/cuda/argmax.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_buffers.h"
#include "backend/cuda/device.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/embedding.cuh"
#include "backend/cuda/gemm.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/sample.cuh"
#include "backend/cuda/sample_params.h"
#include "backend/cuda/silu_mul.cuh"
#include "core/log.h"
#include "model/rope.h"

namespace tailor::cuda_runner_detail {

using namespace tailor::cuda;

constexpr int64_t kMaxChunk = 512;   // tokens per internal forward chunk (prefill)
constexpr int64_t kMaxOutRows = 64;  // logits rows per lm_head pass
constexpr size_t kGemmWorkspace = 32ull << 20;
// Products of up to this many rows use tailor's GEMV (faster than cuBLAS at batch 1-2 on H200, see
// bench/RESULTS.md); larger ones go to cuBLASLt, which streams the weights better at batch 3-8.
constexpr int64_t kGemvRows = 2;

inline std::string format_gb(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", double(b) / 1e9);
  return buf;
}

#define TAILOR_CUDA_TRY(expr, what)                                      \
  do {                                                                   \
    const cudaError_t _e = (expr);                                       \
    if (_e != cudaSuccess) return ::tailor::cuda::cuda_status(_e, what); \
  } while (0)

struct LayerW {
  float* attn_norm = nullptr;  // [D]
  void* wqkv = nullptr;        // [Q + 2KV, D]: rows of q, then k, then v
  float* bqkv = nullptr;       // [Q + 2KV] or null
  float* q_norm = nullptr;     // [head_dim] (Qwen3) or null
  float* k_norm = nullptr;
  void* wo = nullptr;         // [D, Q]
  float* bo = nullptr;        // [D] or null
  float* ffn_norm = nullptr;  // [D]
  void* wgu = nullptr;        // [2F, D]: rows gate_0, up_0, gate_1, up_1, ...
  float* bgu = nullptr;       // [2F] interleaved the same way, or null
  void* wdown = nullptr;      // [D, F]
  float* bdown = nullptr;     // [D] or null
};

// Host-side inputs of one chunk, uploaded in one copy: [ids C][pos C][slot C][rows C][tiles 4C] (int32).
struct InputBlock {
  int32_t* ids;
  int32_t* pos;
  int32_t* slot;
  int32_t* rows;
  AttentionTile* tiles;
};

class CudaRunner final : public Runner {
 public:
  CudaRunner(std::shared_ptr<const ModelSpec> spec, const RunnerOptions& opt)
      : spec_(std::move(spec)), opt_(opt) {}

  ~CudaRunner() override {
    if (timing_ && graph_steps_ > 0)
      std::fprintf(stderr, "tailor: CUDA decode graph: %.3f ms GPU time per step (mean of %d replays)\n",
                   graph_ms_ / graph_steps_, graph_steps_);
    for (cudaEvent_t e : timing_events_)
      if (e) cudaEventDestroy(e);
    for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
    if (stream_) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  Status init();

  Status forward(std::span<const SeqBatchEntry> batch, std::vector<float>& logits) override {
    return run(batch, &logits, nullptr);
  }
  Status forward_argmax(std::span<const SeqBatchEntry> batch, std::vector<int32_t>& ids) override {
    return run(batch, nullptr, &ids);
  }
  Status forward_sample(std::span<const SeqBatchEntry> batch, std::span<const DeviceSampling> params,
                        std::vector<int32_t>& ids) override {
    if (params.size() != batch.size())
      return invalid_argument(cat("forward_sample: ", params.size(), " sampling parameter sets for ",
                                  batch.size(), " sequences (one per sequence)"));
    for (const DeviceSampling& d : params)
      TAILOR_RETURN_IF_ERROR(validate(sampler_params(d)).with_context("forward_sample: "));
    return run(batch, nullptr, &ids, params);
  }
  bool samples_on_device() const override { return true; }
  // Stack runners (layer_end < n_layer, the GPU part of a split): x in, layers [0, layer_end), x out.
  Status forward_layers(std::span<const SeqBatchEntry> batch, std::vector<float>& x) override {
    return run(batch, nullptr, nullptr, {}, &x);
  }
  const HParams& hparams() const override { return spec_->hp; }
  const RunnerOptions& options() const override { return opt_; }
  std::string describe() const override {
    return cat("cuda: GPU ", dev_.index, " ", dev_.name, " (sm_", dev_.cc_major, dev_.cc_minor, ", ",
               dev_.n_sm, " SMs), weights ", dtype_name(wt_), ", KV ", dtype_name(kv_t_), ", decode graphs, ",
               use_mma_ ? "tensor-core prefill attention" : "CUDA-core attention",
               stack_ ? cat(", layers 0-", n_run_ - 1) : "");
  }
  const CudaRunnerStats& stats() const { return stats_; }

 private:
  Status layout(DeviceArena& w);
  Status upload_weights();
  // Exactly one output: logits, ids (without `sampling`: greedy, forward_argmax; with it, one per entry:
  // drawn, forward_sample), or (stack runners) the residual stream x, which is also the input.
  Status run(std::span<const SeqBatchEntry> batch, std::vector<float>* logits, std::vector<int32_t>* ids,
             std::span<const DeviceSampling> sampling = {}, std::vector<float>* x = nullptr);
  Status run_eager(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                   std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                   std::vector<float>* x);
  Status run_decode_graph(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                          std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                          std::vector<float>* x);
  // Uploads the sampling parameters (and masks) of output rows [0, params.size()) to d_sample_rows_ /
  // d_masks_, through the pinned h_sample_ (which the previous step's sync has released).
  Status upload_sampling(std::span<const DeviceSampling> params);
  // The device work of one chunk of T tokens whose inputs are already uploaded.
  Status layers(int64_t T, bool mma_attention, int n_tiles, int n_split);
  // Final norm + lm_head + argmax (or, with sample, the sampler on d_sample_rows_) for the token rows
  // rows[row_offset ...]; identity_rows: they are 0..n_rows-1.
  Status head(int64_t n_rows, int64_t row_offset, bool identity_rows, bool sample = false);
  // y = alpha * x · wᵀ (+ bias) + beta * y; with norm_w, x is rms_norm(x_) with that weight, fused into the
  // GEMV.
  Status mm(void* y, DType yt, int64_t ldy, const void* x, int64_t ldx, const void* w, int64_t n, int64_t k,
            int64_t m, float alpha, float beta, const float* bias, bool swiglu,
            const float* norm_w = nullptr);
  // Whether the RMSNorm before a product of T rows folds into the GEMV (decode, batch <= kGemvRows).
  bool fuse_norm(int64_t T) const { return T >= 1 && T <= kGemvRows && fuse_norm_ok_[T]; }
  KvCacheView cache(int layer) const {
    KvCacheView c;
    c.k = static_cast<uint8_t*>(kv_base_) + uint64_t(layer) * 2 * kv_layer_bytes_;
    c.v = static_cast<uint8_t*>(c.k) + kv_layer_bytes_;
    c.t = kv_t_;
    c.capacity = opt_.n_ctx;
    c.slot_stride = int64_t(spec_->hp.n_head_kv) * opt_.n_ctx * spec_->hp.head_dim;
    return c;
  }
  InputBlock host_inputs() const {
    int32_t* p = reinterpret_cast<int32_t*>(h_in_.data());
    return {p, p + chunk_, p + 2 * chunk_, p + 3 * chunk_, reinterpret_cast<AttentionTile*>(p + 4 * chunk_)};
  }

  std::shared_ptr<const ModelSpec> spec_;
  RunnerOptions opt_;
  DeviceProps dev_;
  DType wt_ = DType::bf16, kv_t_ = DType::bf16;
  bool use_mma_ = false;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GemmContext> gemm_;
  DeviceArena weights_arena_, kv_arena_, scratch_arena_;
  CudaRunnerStats stats_;

  // Weights.
  void* embed_ = nullptr;    // [V, D]
  void* lm_head_ = nullptr;  // [V, D] (== embed_ when tied)
  float* out_norm_ = nullptr;
  float* inv_freq_ = nullptr;   // [head_dim / 2]
  std::vector<LayerW> layers_;  // [n_run_]
  // Layers [0, n_run_) live here. A stack runner (n_run_ < n_layer: the GPU part of a split) has no
  // embedding, final norm or lm_head: its residual stream comes from and goes back to the host.
  int n_run_ = 0;
  bool stack_ = false;
  // KV cache.
  void* kv_base_ = nullptr;
  uint64_t kv_layer_bytes_ = 0;  // one of k or v of one layer, all slots
  // Scratch for chunk_ tokens.
  int64_t chunk_ = 0;
  float* x_ = nullptr;          // f32 [C, D]   residual stream
  void* xn_ = nullptr;          // wt  [C, D]   normalized input of a product
  float* qkv_ = nullptr;        // f32 [C, Q + 2KV]
  void* q_ = nullptr;           // kv_t [C, Q]  rotated queries
  void* att_ = nullptr;         // wt  [C, Q]   attention output
  void* gu_ = nullptr;          // wt  [C, 2F]  gate/up (GEMM path)
  void* act_ = nullptr;         // wt  [C, F]   silu(gate) * up
  void* xs_ = nullptr;          // wt  [R, D]   normalized rows for lm_head
  float* logits_ = nullptr;     // f32 [R, V]
  int32_t* out_ids_ = nullptr;  // [R]
  void* attn_ws_ = nullptr;
  unsigned int* attn_counters_ = nullptr;  // [C * n_head], zero between launches
  bool decode_graph_ = false;              // layers() is recording a decode step: one token per distinct slot
  std::string experiment_;                 // ",a,b," from TAILOR_CUDA_EXPERIMENT (timing only)
  int min_keys_ = kDecodeMinKeysPerSplit;  // decode attention: keys per split at least
  bool exp(const char* name) const { return experiment_.find(cat(",", name, ",")) != std::string::npos; }
  void* argmax_ws_ = nullptr;                // argmax partials for R rows
  unsigned int* argmax_counters_ = nullptr;  // [R], zero between launches
  SampleRow* d_sample_rows_ = nullptr;       // [R] sampling parameters of the output rows
  uint32_t* d_masks_ = nullptr;              // [R, mask_words_] their token masks (rows that have one)
  int64_t mask_words_ = 0;                   // (V + 31) / 32
  size_t attn_ws_bytes_ = 0;
  unsigned int* nonfinite_ = nullptr;  // [n_run_]
  int32_t* d_in_ = nullptr;            // device copy of the input block
  // h_out_: logits / ids; stack runners: the residual stream in and out. h_sample_: [R] SampleRow, then
  // [R, mask_words_] mask words.
  PinnedBuffer h_in_, h_out_, h_sample_;
  // Decode step per batch size B and mode: key 2 * B + 1 when it ends in the sampler, 2 * B otherwise.
  std::map<int, cudaGraphExec_t> graphs_;
  bool check_finite_ = true;
  bool fuse_norm_ok_[kGemvRows + 1] = {};
  // TAILOR_CUDA_TIMING=1: GPU time of each decode-graph replay (events around the launch), reported at exit;
  // the difference to the wall time per step is host overhead.
  bool timing_ = false;
  cudaEvent_t timing_events_[2] = {nullptr, nullptr};
  double graph_ms_ = 0;
  int graph_steps_ = 0;
};

}  // namespace tailor::cuda_runner_detail
