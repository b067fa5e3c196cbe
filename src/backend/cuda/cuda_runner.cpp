// The CUDA Runner (see cuda_runner.h). Per layer (HF LlamaDecoderLayer, Qwen2/Qwen3/Granite variants):
//   n = rms_norm(x);  qkv = n · Wqkvᵀ;  q, k, v = rope(qk_norm(qkv + b));  kv_cache[pos] = k, v
//   x += attn(q, kv_cache) · Woᵀ * residual_multiplier
//   n = rms_norm(x);  x += (silu(n · Wgateᵀ) * (n · Wupᵀ)) · Wdownᵀ * residual_multiplier
// Residual stream x in f32; matrix inputs in the weight dtype; products accumulate in f32.
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

namespace tailor {

namespace {

using namespace tailor::cuda;

constexpr int64_t kMaxChunk = 512;   // tokens per internal forward chunk (prefill)
constexpr int64_t kMaxOutRows = 64;  // logits rows per lm_head pass
constexpr size_t kGemmWorkspace = 32ull << 20;
// Products of up to this many rows use tailor's GEMV (faster than cuBLAS at batch 1-2 on H200, see
// bench/RESULTS.md); larger ones go to cuBLASLt, which streams the weights better at batch 3-8.
constexpr int64_t kGemvRows = 2;

std::string format_gb(uint64_t b) {
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

Status CudaRunner::init() {
  const HParams& hp = spec_->hp;
  if (opt_.n_ctx <= 0 || opt_.n_slots <= 0) return invalid_argument("runner: n_ctx and n_slots must be > 0");
  wt_ = opt_.weight_dtype;
  kv_t_ = opt_.kv_dtype;
  auto is_float = [](DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; };
  if (!is_float(wt_))
    return unsupported(
        cat("CUDA runner: weight dtype ", dtype_name(wt_), " is not supported (use f32, f16 or bf16)"));
  if (!is_float(kv_t_))
    return unsupported(
        cat("CUDA runner: KV-cache dtype ", dtype_name(kv_t_), " is not supported (f32, f16, bf16)"));
  if (hp.head_dim % 8 != 0 || hp.head_dim > 256)
    return unsupported(
        cat("CUDA runner: head_dim ", hp.head_dim, " is not supported (a multiple of 8, at most 256)"));
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
    return unsupported(
        cat("CUDA runner: ", hp.n_head, " query heads do not split into ", hp.n_head_kv, " KV groups"));
  TAILOR_RETURN_IF_ERROR(check_layer_range(opt_, hp, "CUDA runner"));
  if (opt_.layer_begin != 0)
    return unsupported(cat("CUDA runner: layer range [", opt_.layer_begin, ", ", layer_end_of(opt_, hp),
                           "): the GPU runs the first layers of a split, so its range starts at 0"));
  n_run_ = layer_end_of(opt_, hp);
  stack_ = n_run_ < hp.n_layer;
  TAILOR_ASSIGN_OR_RETURN(dev_, open_device(0, kv_t_ == DType::bf16 ? DType::bf16 : wt_));
  use_mma_ = dev_.cc_major >= 8 && attention_prefill_supported(kv_t_, hp.head_dim);
  // Programmatic dependent launch (Hopper+): each decode kernel's launch overlaps the previous one's tail.
  // TAILOR_CUDA_PDL=0 turns it off (for A/B timing).
  const char* pdl_env = std::getenv("TAILOR_CUDA_PDL");
  set_programmatic_launch(dev_.cc_major >= 9 && !(pdl_env && std::string(pdl_env) == "0"));
  check_finite_ = opt_.check_finite_first_pass;
  // TAILOR_CUDA_EXPERIMENT: comma-separated timing experiments (A/B in one process): noearly (GEMV weight
  // loads wait for the previous kernel), nodistinct (decode attention waits before reading any key, and RoPE
  // runs as its own kernel), nofuserope (RoPE as its own kernel), split32 / split128 (decode attention splits
  // of at least 32 / 128 keys instead of 64), hpb8 (8 query heads per decode-attention block instead of 4),
  // skip-rope / skip-attn (leave the op out: wrong output, timing only).
  if (const char* ex = std::getenv("TAILOR_CUDA_EXPERIMENT"); ex && *ex) {
    experiment_ = cat(",", ex, ",");
    log_warn("TAILOR_CUDA_EXPERIMENT=", ex, ": timing experiment, output may be wrong");
    if (exp("split32")) min_keys_ = 32;
    if (exp("split128")) min_keys_ = 128;
  }

  // Sizes first, so "does it fit" is answered before anything is allocated.
  TAILOR_RETURN_IF_ERROR(layout(weights_arena_));
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab;
  kv_layer_bytes_ = dtype_row_bytes(kv_t_, uint64_t(opt_.n_slots) * hp.n_head_kv * opt_.n_ctx * hp.head_dim);
  kv_arena_.take(kv_layer_bytes_ * 2 * n_run_);
  chunk_ = std::min<int64_t>(kMaxChunk, int64_t(opt_.n_slots) * opt_.n_ctx);
  chunk_ = std::max<int64_t>(chunk_, std::min<int64_t>(opt_.n_slots, kMaxChunk));
  const int64_t C = chunk_, R = stack_ ? 0 : std::min<int64_t>(kMaxOutRows, C);  // R: lm_head rows
  mask_words_ = (V + 31) / 32;
  if (V > kSampleMaxVocab)
    return unsupported(
        cat("CUDA runner: a vocabulary of ", V, " tokens is beyond the GPU sampler's ", kSampleMaxVocab));
  for (int64_t t = 1; t <= C; ++t)
    attn_ws_bytes_ = std::max(
        attn_ws_bytes_, attention_decode_workspace_bytes(
                            t, hp.n_head, hp.head_dim,
                            attention_decode_splits(t, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_)));
  auto scratch = [&](DeviceArena& a) {
    x_ = static_cast<float*>(a.take(uint64_t(C) * D * 4));
    xn_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * D));
    qkv_ = static_cast<float*>(a.take(uint64_t(C) * (Q + 2 * KV) * 4));
    q_ = a.take(dtype_row_bytes(kv_t_, uint64_t(C) * Q));
    att_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * Q));
    gu_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * 2 * F));
    act_ = a.take(dtype_row_bytes(wt_, uint64_t(C) * F));
    xs_ = a.take(dtype_row_bytes(wt_, uint64_t(R) * D));
    logits_ = static_cast<float*>(a.take(uint64_t(R) * V * 4));
    out_ids_ = static_cast<int32_t*>(a.take(uint64_t(R) * 4));
    attn_ws_ = a.take(attn_ws_bytes_);
    attn_counters_ = static_cast<unsigned int*>(a.take(uint64_t(C) * hp.n_head * 4));
    argmax_ws_ = a.take(argmax_workspace_bytes(R));
    argmax_counters_ = static_cast<unsigned int*>(a.take(uint64_t(R) * 4));
    d_sample_rows_ = static_cast<SampleRow*>(a.take(uint64_t(R) * sizeof(SampleRow)));
    d_masks_ = static_cast<uint32_t*>(a.take(uint64_t(R) * uint64_t(mask_words_) * 4));
    nonfinite_ = static_cast<unsigned int*>(a.take(uint64_t(n_run_) * 4));
    d_in_ = static_cast<int32_t*>(a.take(uint64_t(C) * 8 * 4));
  };
  scratch(scratch_arena_);
  const uint64_t need = weights_arena_.size() + kv_arena_.size() + scratch_arena_.size() + kGemmWorkspace;
  const uint64_t slack = 512ull << 20;  // CUDA context, cuBLASLt kernels, graphs
  if (need + slack > dev_.mem_free)
    return out_of_memory(
        cat("the model needs ", format_gb(need), " of GPU memory (weights ", format_gb(weights_arena_.size()),
            ", KV cache ", format_gb(kv_arena_.size()), " for ", opt_.n_slots, " x ", opt_.n_ctx,
            " tokens, scratch ", format_gb(scratch_arena_.size()), ") plus about 0.5 GB for CUDA, but GPU ",
            dev_.index, " (", dev_.name, ") has ", format_gb(dev_.mem_free),
            " free; use a smaller --ctx or fewer slots, a smaller --dtype, or the CPU backend"));

  TAILOR_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  if (const char* tm = std::getenv("TAILOR_CUDA_TIMING"); tm && std::string(tm) == "1") {
    timing_ = true;
    TAILOR_CUDA_TRY(cudaEventCreate(&timing_events_[0]), "timing events");
    TAILOR_CUDA_TRY(cudaEventCreate(&timing_events_[1]), "timing events");
  }
  const cublasStatus_t gs = GemmContext::create(kGemmWorkspace, &gemm_);
  if (gs != CUBLAS_STATUS_SUCCESS) return internal_error(cat("cuBLASLt: ", gemm_status_string(gs)));
  TAILOR_RETURN_IF_ERROR(weights_arena_.allocate("model weights"));
  TAILOR_RETURN_IF_ERROR(layout(weights_arena_));
  TAILOR_RETURN_IF_ERROR(kv_arena_.allocate("KV cache"));
  kv_base_ = kv_arena_.take(kv_layer_bytes_ * 2 * n_run_);
  // Zeroed once so rows never written read as zeros (never NaN) anywhere a kernel might touch them.
  TAILOR_CUDA_TRY(cudaMemsetAsync(kv_base_, 0, kv_arena_.size(), stream_), "clearing the KV cache");
  TAILOR_RETURN_IF_ERROR(scratch_arena_.allocate("activations"));
  scratch(scratch_arena_);
  // The decode attention's merge counters must start at zero (every launch leaves them so).
  TAILOR_CUDA_TRY(cudaMemsetAsync(attn_counters_, 0, size_t(C) * hp.n_head * 4, stream_), "clearing scratch");
  TAILOR_CUDA_TRY(cudaMemsetAsync(argmax_counters_, 0, size_t(R) * 4, stream_), "clearing scratch");
  TAILOR_RETURN_IF_ERROR(h_in_.allocate(uint64_t(C) * 8 * 4, "input staging"));
  TAILOR_RETURN_IF_ERROR(stack_ ? h_out_.allocate(uint64_t(C) * D * 4, "residual stream staging")
                                : h_out_.allocate(uint64_t(R) * V * 4, "logits staging"));
  TAILOR_RETURN_IF_ERROR(
      h_sample_.allocate(uint64_t(R) * (sizeof(SampleRow) + uint64_t(mask_words_) * 4), "sampling staging"));
  TAILOR_RETURN_IF_ERROR(upload_weights());
  // Decode products fuse their RMSNorm when the normalized rows fit the GEMV's shared memory
  // (TAILOR_CUDA_FUSE=0 turns it off, for A/B timing).
  const char* fuse_env = std::getenv("TAILOR_CUDA_FUSE");
  for (int b = 1; b <= kGemvRows; ++b) {
    GemvParams p;
    p.w = layers_.empty() ? lm_head_ : layers_[0].wqkv;
    p.wt = wt_;
    p.k = D;
    p.batch = b;
    p.norm_x = x_;
    p.ld_norm_x = D;
    p.norm_w = stack_ ? layers_[0].attn_norm : out_norm_;
    fuse_norm_ok_[b] = gemv_norm_fusable(p) && !(fuse_env && std::string(fuse_env) == "0");
  }

  stats_.device = dev_.index;
  stats_.device_name = dev_.name;
  stats_.weight_bytes = weights_arena_.size();
  stats_.kv_bytes = kv_arena_.size();
  stats_.scratch_bytes = scratch_arena_.size() + kGemmWorkspace;
  const uint64_t per_layer =
      dtype_row_bytes(wt_, uint64_t(D) * (Q + 2 * KV) + uint64_t(D) * Q + 3ull * D * F);
  stats_.decode_read_bytes_per_token =
      per_layer * n_run_ +
      (stack_ ? 0 : dtype_row_bytes(wt_, uint64_t(V) * D) + dtype_row_bytes(wt_, uint64_t(D)));
  return {};
}

Status CudaRunner::layout(DeviceArena& a) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab,
                hd = hp.head_dim;
  auto mat = [&](int64_t rows, int64_t cols) {
    return a.take(dtype_row_bytes(wt_, uint64_t(rows) * uint64_t(cols)));
  };
  auto vec = [&](int64_t n) { return static_cast<float*>(a.take(uint64_t(n) * 4)); };
  if (!stack_) {  // a stack runner uploads its layers only (the Plan keeps a split's embedding on the host)
    embed_ = mat(V, D);
    lm_head_ = hp.tie_word_embeddings ? embed_ : mat(V, D);
    out_norm_ = vec(D);
  }
  inv_freq_ = vec(hd / 2);
  layers_.assign(size_t(n_run_), LayerW{});
  for (LayerW& L : layers_) {
    L.attn_norm = vec(D);
    L.wqkv = mat(Q + 2 * KV, D);
    L.bqkv = hp.attention_bias ? vec(Q + 2 * KV) : nullptr;
    L.q_norm = hp.qk_norm ? vec(hd) : nullptr;
    L.k_norm = hp.qk_norm ? vec(hd) : nullptr;
    L.wo = mat(D, Q);
    L.bo = hp.o_proj_bias ? vec(D) : nullptr;
    L.ffn_norm = vec(D);
    L.wgu = mat(2 * F, D);
    L.bgu = hp.mlp_bias ? vec(2 * F) : nullptr;
    L.wdown = mat(D, F);
    L.bdown = hp.mlp_bias ? vec(D) : nullptr;
  }
  return {};
}

Status CudaRunner::upload_weights() {
  const HParams& hp = spec_->hp;
  const SafeTensorsArchive& w = *spec_->weights;
  auto find = [&](const std::string& name) -> Result<const SafeTensor*> {
    const SafeTensor* t = w.find(name);
    if (!t) return not_found(cat(spec_->dir, ": tensor \"", name, "\" is missing"));
    return t;
  };
  // Vectors: converted to f32 on the host (they are small), copied synchronously.
  auto host_vec = [&](const std::string& name, std::vector<float>& v) -> Status {
    TAILOR_ASSIGN_OR_RETURN(const SafeTensor* t, find(name));
    v.resize(size_t(t->shape.numel()));
    convert_row(t->data, t->dtype, v.data(), DType::f32, v.size());
    return {};
  };
  auto put = [&](float* dst, const std::vector<float>& v, const std::string& what) -> Status {
    TAILOR_CUDA_TRY(cudaMemcpy(dst, v.data(), v.size() * 4, cudaMemcpyHostToDevice), cat("uploading ", what));
    return {};
  };
  auto vec = [&](const std::string& name, float* dst) -> Status {
    std::vector<float> v;
    TAILOR_RETURN_IF_ERROR(host_vec(name, v));
    return put(dst, v, name);
  };

  std::vector<std::pair<const SafeTensor*, std::tuple<void*, int64_t, int64_t>>> mats;
  auto add = [&](const std::string& name, void* dst, int64_t step, int64_t off) -> Status {
    TAILOR_ASSIGN_OR_RETURN(const SafeTensor* t, find(name));
    mats.push_back({t, {dst, step, off}});
    return {};
  };
  const int64_t Q = hp.q_dim(), KV = hp.kv_dim();
  if (!stack_) {
    TAILOR_RETURN_IF_ERROR(add("model.embed_tokens.weight", embed_, 1, 0));
    if (!hp.tie_word_embeddings) TAILOR_RETURN_IF_ERROR(add("lm_head.weight", lm_head_, 1, 0));
  }
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    const std::string p = cat("model.layers.", l, ".");
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.q_proj.weight", L.wqkv, 1, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.k_proj.weight", L.wqkv, 1, Q));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.v_proj.weight", L.wqkv, 1, Q + KV));
    TAILOR_RETURN_IF_ERROR(add(p + "self_attn.o_proj.weight", L.wo, 1, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.gate_proj.weight", L.wgu, 2, 0));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.up_proj.weight", L.wgu, 2, 1));
    TAILOR_RETURN_IF_ERROR(add(p + "mlp.down_proj.weight", L.wdown, 1, 0));
  }
  uint64_t total = 0;
  for (auto& m : mats) total += m.first->nbytes;
  WeightUploader up;
  TAILOR_RETURN_IF_ERROR(up.init(stream_, total, /*progress=*/true));
  for (auto& [t, d] : mats) {
    // Shapes are validated by load_model_spec; the upload relies on [rows, cols] = [out, in].
    TAILOR_RETURN_IF_ERROR(up.upload(*t, std::get<0>(d), wt_, std::get<1>(d), std::get<2>(d)));
  }

  if (!stack_) TAILOR_RETURN_IF_ERROR(vec("model.norm.weight", out_norm_));
  TAILOR_RETURN_IF_ERROR(put(inv_freq_, rope_inv_freq(hp), "rope inv_freq"));
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    const std::string p = cat("model.layers.", l, ".");
    TAILOR_RETURN_IF_ERROR(vec(p + "input_layernorm.weight", L.attn_norm));
    TAILOR_RETURN_IF_ERROR(vec(p + "post_attention_layernorm.weight", L.ffn_norm));
    if (L.bqkv) {
      std::vector<float> q, k, v;
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.q_proj.bias", q));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.k_proj.bias", k));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "self_attn.v_proj.bias", v));
      q.insert(q.end(), k.begin(), k.end());
      q.insert(q.end(), v.begin(), v.end());
      TAILOR_RETURN_IF_ERROR(put(L.bqkv, q, p + "q/k/v bias"));
    }
    if (L.q_norm) {
      TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.q_norm.weight", L.q_norm));
      TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.k_norm.weight", L.k_norm));
    }
    if (L.bo) TAILOR_RETURN_IF_ERROR(vec(p + "self_attn.o_proj.bias", L.bo));
    if (L.bgu) {
      std::vector<float> g, u, gu;
      TAILOR_RETURN_IF_ERROR(host_vec(p + "mlp.gate_proj.bias", g));
      TAILOR_RETURN_IF_ERROR(host_vec(p + "mlp.up_proj.bias", u));
      for (size_t i = 0; i < g.size(); ++i) {
        gu.push_back(g[i]);
        gu.push_back(u[i]);
      }
      TAILOR_RETURN_IF_ERROR(put(L.bgu, gu, p + "gate/up bias"));
      TAILOR_RETURN_IF_ERROR(vec(p + "mlp.down_proj.bias", L.bdown));
    }
  }
  TAILOR_ASSIGN_OR_RETURN(const uint64_t overflow, up.finish());
  if (overflow > 0)
    log_warn("CUDA runner: ", overflow,
             " weights exceed the f16 range (±65504) and became ±inf; use --dtype bf16");
  return {};
}

Status CudaRunner::mm(void* y, DType yt, int64_t ldy, const void* x, int64_t ldx, const void* w, int64_t n,
                      int64_t k, int64_t m, float alpha, float beta, const float* bias, bool swiglu,
                      const float* norm_w) {
  if (m <= kGemvRows) {
    GemvParams p;
    p.w = w;
    p.wt = wt_;
    p.n = n;
    p.k = k;
    p.x = x;
    p.ldx = ldx;
    p.y = y;
    p.yt = yt;
    p.ldy = ldy;
    p.batch = int(m);
    p.bias = bias;
    p.alpha = alpha;
    p.beta = beta;
    p.swiglu = swiglu;
    p.early_weights = !exp("noearly");
    if (norm_w) {
      p.x = nullptr;
      p.norm_x = x_;
      p.ld_norm_x = spec_->hp.n_embd;
      p.norm_w = norm_w;
      p.norm_eps = spec_->hp.rms_norm_eps;
    }
    TAILOR_CUDA_TRY(gemv(p, stream_), "GEMV");
    return {};
  }
  TAILOR_CHECK(!swiglu && !norm_w) << "swiglu and norm fusion exist only in the GEMV path";
  GemmParams g;
  g.w = w;
  g.wt = wt_;
  g.n = n;
  g.k = k;
  g.x = x;
  g.ldx = ldx;
  g.m = m;
  g.y = y;
  g.yt = yt;
  g.ldy = ldy;
  g.alpha = alpha;
  g.beta = beta;
  const cublasStatus_t st = gemm_->run(g, stream_);
  if (st != CUBLAS_STATUS_SUCCESS)
    return internal_error(cat("cuBLASLt matmul [", m, " x ", k, "] x [", k, " x ", n, "] in ",
                              dtype_name(wt_), ": ", gemm_status_string(st)));
  if (bias) {
    TAILOR_CHECK(yt == DType::f32 && ldy == n) << "GEMM bias needs an f32 dense output";
    TAILOR_CUDA_TRY(add_bias_rows(static_cast<float*>(y), bias, alpha, m, n, stream_), "bias");
  }
  return {};
}

Status CudaRunner::layers(int64_t T, bool mma_attention, int n_tiles, int n_split) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab, C = chunk_;
  const int32_t* d_ids = d_in_;
  const int32_t* d_pos = d_in_ + C;
  const int32_t* d_slot = d_in_ + 2 * C;
  const auto* d_tiles = reinterpret_cast<const AttentionTile*>(d_in_ + 4 * C);
  const float r = hp.residual_multiplier, eps = hp.rms_norm_eps;
  if (!stack_)  // a stack runner's x_ was uploaded with the inputs
    TAILOR_CUDA_TRY(embedding(x_, embed_, wt_, V, d_ids, T, D, hp.embedding_multiplier, stream_),
                    "embedding");
  for (int l = 0; l < n_run_; ++l) {
    const LayerW& L = layers_[size_t(l)];
    // x = x + attn(rms_norm(x)) * residual_multiplier
    const bool fuse = fuse_norm(T);
    if (!fuse)
      TAILOR_CUDA_TRY(rms_norm(xn_, wt_, x_, nullptr, 0.0f, L.attn_norm, nullptr, T, D, eps, stream_),
                      "rms_norm");
    TAILOR_RETURN_IF_ERROR(mm(qkv_, DType::f32, Q + 2 * KV, xn_, D, L.wqkv, Q + 2 * KV, D, T, 1.0f, 0.0f,
                              nullptr, false, fuse ? L.attn_norm : nullptr));
    // Decode graph: RoPE and the KV-cache write happen inside the decode attention (AttentionParams::qkv).
    const bool fuse_rope = decode_graph_ && !mma_attention && !exp("nodistinct") && !exp("nofuserope");
    if (!fuse_rope && !exp("skip-rope"))
      TAILOR_CUDA_TRY(rope_qkv_store(q_, kv_t_, qkv_, L.bqkv, L.q_norm, L.k_norm, eps, d_pos, d_slot,
                                     inv_freq_, cache(l), T, hp.n_head, hp.n_head_kv, hp.head_dim, stream_),
                      "rope/kv store");
    AttentionParams ap;
    ap.q = q_;
    ap.q_stride = Q;
    ap.cache = cache(l);
    ap.pos = d_pos;
    ap.slots = d_slot;
    ap.out = att_;
    ap.out_t = wt_;
    ap.out_stride = Q;
    ap.n_tok = T;
    ap.n_head = hp.n_head;
    ap.n_head_kv = hp.n_head_kv;
    ap.head_dim = hp.head_dim;
    ap.scale = hp.attn_scale();
    ap.distinct_slots = decode_graph_ && !exp("nodistinct");
    ap.min_keys_per_split = min_keys_;
    ap.heads_per_block = exp("hpb8") ? 8 : kDecodeHeadsPerBlock;
    if (fuse_rope) {
      ap.qkv = static_cast<const float*>(qkv_);
      ap.qkv_bias = L.bqkv;
      ap.q_norm = L.q_norm;
      ap.k_norm = L.k_norm;
      ap.norm_eps = eps;
      ap.inv_freq = inv_freq_;
    }
    if (exp("skip-attn")) {
    } else if (mma_attention)
      TAILOR_CUDA_TRY(attention_prefill(ap, d_tiles, n_tiles, stream_), "attention (prefill)");
    else
      TAILOR_CUDA_TRY(attention_decode(ap, n_split, attn_ws_, attn_counters_, stream_), "attention (decode)");
    TAILOR_RETURN_IF_ERROR(mm(x_, DType::f32, D, att_, Q, L.wo, D, Q, T, r, 1.0f, L.bo, false));
    // x = x + down(silu(gate(n)) * up(n)) * residual_multiplier
    if (!fuse)
      TAILOR_CUDA_TRY(rms_norm(xn_, wt_, x_, nullptr, 0.0f, L.ffn_norm, nullptr, T, D, eps, stream_),
                      "rms_norm");
    if (T <= kGemvRows) {
      TAILOR_RETURN_IF_ERROR(
          mm(act_, wt_, F, xn_, D, L.wgu, 2 * F, D, T, 1.0f, 0.0f, L.bgu, true, fuse ? L.ffn_norm : nullptr));
    } else {
      TAILOR_RETURN_IF_ERROR(mm(gu_, wt_, 2 * F, xn_, D, L.wgu, 2 * F, D, T, 1.0f, 0.0f, nullptr, false));
      TAILOR_CUDA_TRY(silu_mul(act_, wt_, gu_, wt_, L.bgu, T, F, stream_), "silu_mul");
    }
    TAILOR_RETURN_IF_ERROR(mm(x_, DType::f32, D, act_, F, L.wdown, D, F, T, r, 1.0f, L.bdown, false));
    if (check_finite_) TAILOR_CUDA_TRY(count_nonfinite(x_, T * D, nonfinite_ + l, stream_), "finite check");
  }
  return {};
}

Status CudaRunner::head(int64_t n_rows, int64_t row_offset, bool identity_rows, bool sample) {
  const HParams& hp = spec_->hp;
  const int64_t D = hp.n_embd, V = hp.n_vocab;
  const int32_t* d_rows = d_in_ + 3 * chunk_ + row_offset;
  const bool fuse = identity_rows && fuse_norm(n_rows);
  if (!fuse)
    TAILOR_CUDA_TRY(
        rms_norm(xs_, wt_, x_, nullptr, 0.0f, out_norm_, d_rows, n_rows, D, hp.rms_norm_eps, stream_),
        "final rms_norm");
  TAILOR_RETURN_IF_ERROR(mm(logits_, DType::f32, V, xs_, D, lm_head_, V, D, n_rows, 1.0f / hp.logits_scaling,
                            0.0f, nullptr, false, fuse ? out_norm_ : nullptr));
  if (sample) {
    // In place: the logits rows become the sampler's weights (nobody reads the logits in this mode).
    TAILOR_CUDA_TRY(cuda::sample(out_ids_, logits_, V, logits_, n_rows, V, d_sample_rows_, d_masks_, stream_),
                    "sampling");
    return {};
  }
  TAILOR_CUDA_TRY(argmax(out_ids_, logits_, V, n_rows, V, stream_, argmax_ws_, argmax_counters_), "argmax");
  return {};
}

Status CudaRunner::upload_sampling(std::span<const DeviceSampling> params) {
  const int64_t R = std::min<int64_t>(kMaxOutRows, chunk_);
  TAILOR_CHECK(int64_t(params.size()) <= R) << "upload_sampling: " << params.size() << " rows > " << R;
  auto* rows = reinterpret_cast<SampleRow*>(h_sample_.data());
  auto* words = reinterpret_cast<uint32_t*>(h_sample_.data() + size_t(R) * sizeof(SampleRow));
  int64_t n_masks = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const DeviceSampling& d = params[i];
    rows[i] = to_sample_row(d, n_masks * mask_words_);
    if (!d.mask.empty()) {
      // Words past the end of a shorter mask allow nothing (as on the CPU).
      uint32_t* m = words + n_masks * mask_words_;
      const size_t n = std::min(d.mask.size(), size_t(mask_words_));
      std::memcpy(m, d.mask.data(), n * 4);
      std::memset(m + n, 0, (size_t(mask_words_) - n) * 4);
      ++n_masks;
    }
  }
  TAILOR_CUDA_TRY(cudaMemcpyAsync(d_sample_rows_, rows, params.size() * sizeof(SampleRow),
                                  cudaMemcpyHostToDevice, stream_),
                  "uploading sampling parameters");
  if (n_masks > 0)
    TAILOR_CUDA_TRY(
        cudaMemcpyAsync(d_masks_, words, size_t(n_masks * mask_words_) * 4, cudaMemcpyHostToDevice, stream_),
        "uploading token masks");
  return {};
}

Status CudaRunner::run(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                       std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                       std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  if (stack_ && !x)
    return unsupported(cat("CUDA runner: this runner holds layers [0, ", n_run_, ") of ", hp.n_layer,
                           " (the GPU part of a split) and has no lm_head; use forward_layers"));
  if (!stack_ && x)
    return unsupported(
        "CUDA runner: forward_layers needs a runner over the first layers of a split "
        "(RunnerOptions::layer_end < n_layer)");
  int64_t n_tokens = 0;
  for (const auto& e : batch) {
    n_tokens += int64_t(e.tokens.size());
    if (e.slot < 0 || e.slot >= opt_.n_slots)
      return invalid_argument(cat("forward: slot ", e.slot, " outside [0, ", opt_.n_slots, ")"));
    if (e.tokens.size() != e.pos.size() || e.tokens.empty())
      return invalid_argument(
          "forward: each entry needs as many positions as tokens, and at least one token");
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      if (e.tokens[i] < 0 || e.tokens[i] >= hp.n_vocab)
        return invalid_argument(
            cat("forward: token id ", e.tokens[i], " outside the vocabulary [0, ", hp.n_vocab, ")"));
      if (e.pos[i] < 0 || e.pos[i] >= opt_.n_ctx)
        return invalid_argument(cat("forward: position ", e.pos[i], " outside the context [0, ", opt_.n_ctx,
                                    "); start a new sequence or raise --ctx"));
    }
  }
  if (x && int64_t(x->size()) != n_tokens * hp.n_embd)
    return invalid_argument(cat("forward_layers: the residual stream has ", x->size(),
                                " values; the batch's ", n_tokens, " tokens need ", n_tokens, " x ",
                                hp.n_embd));
  if (logits) logits->clear();
  if (ids) ids->clear();
  if (batch.empty()) return {};
  bool decode =
      std::all_of(batch.begin(), batch.end(), [](const SeqBatchEntry& e) { return e.tokens.size() == 1; });
  // The decode graph's attention reads older keys before the previous kernel ends (distinct_slots): one
  // token per slot. Two entries in one slot (never sent by the engine) take the eager path.
  if (decode) {
    std::vector<int32_t> slots;
    for (const SeqBatchEntry& e : batch) slots.push_back(e.slot);
    std::sort(slots.begin(), slots.end());
    decode = std::adjacent_find(slots.begin(), slots.end()) == slots.end();
  }
  if (decode && !check_finite_ && int64_t(batch.size()) <= std::min<int64_t>(chunk_, kMaxOutRows))
    return run_decode_graph(batch, logits, ids, sampling, x);
  return run_eager(batch, logits, ids, sampling, x);
}

Status CudaRunner::run_eager(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                             std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                             std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  const int64_t V = hp.n_vocab, C = chunk_, R = std::min<int64_t>(kMaxOutRows, C), D = hp.n_embd;
  int64_t t_base = 0;  // tokens of earlier chunks: this chunk's rows of x start at t_base
  size_t e = 0, i = 0;
  bool first_chunk = true;
  while (e < batch.size()) {
    // The previous chunk's input upload reads the pinned block asynchronously: let it finish before
    // refilling.
    if (!first_chunk) TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
    first_chunk = false;
    const InputBlock in = host_inputs();
    int64_t T = 0, n_rows = 0;
    int n_tiles = 0;
    bool multi = false;
    while (e < batch.size() && T < C) {
      const SeqBatchEntry& en = batch[e];
      const int64_t n = std::min<int64_t>(int64_t(en.tokens.size() - i), C - T);
      const bool want_all = logits && en.all_logits;
      for (int64_t j = 0; j < n; ++j) {
        in.ids[T + j] = en.tokens[i + size_t(j)];
        in.pos[T + j] = en.pos[i + size_t(j)];
        in.slot[T + j] = en.slot;
        if (want_all || i + size_t(j) + 1 == en.tokens.size()) in.rows[n_rows++] = int32_t(T + j);
      }
      for (int64_t s = 0; s < n; s += kPrefillTileRows) {
        AttentionTile t;
        t.tok_begin = int32_t(T + s);
        t.n_tok = int32_t(std::min<int64_t>(kPrefillTileRows, n - s));
        t.max_pos = *std::max_element(in.pos + T + s, in.pos + T + s + t.n_tok);
        t.slot = en.slot;
        in.tiles[n_tiles++] = t;
      }
      multi = multi || n > 1;
      T += n;
      i += size_t(n);
      if (i == en.tokens.size()) {
        ++e;
        i = 0;
      }
    }
    std::sort(in.tiles, in.tiles + n_tiles,
              [](const AttentionTile& a, const AttentionTile& b) { return a.max_pos > b.max_pos; });
    TAILOR_CUDA_TRY(cudaMemcpyAsync(d_in_, h_in_.data(), size_t(C) * 8 * 4, cudaMemcpyHostToDevice, stream_),
                    "uploading inputs");
    if (x) {
      std::memcpy(h_out_.data(), x->data() + t_base * D, size_t(T * D) * 4);
      TAILOR_CUDA_TRY(cudaMemcpyAsync(x_, h_out_.data(), size_t(T * D) * 4, cudaMemcpyHostToDevice, stream_),
                      "uploading the residual stream");
    }
    if (check_finite_)
      TAILOR_CUDA_TRY(cudaMemsetAsync(nonfinite_, 0, size_t(n_run_) * 4, stream_), "finite check");
    const bool mma = use_mma_ && multi;
    TAILOR_RETURN_IF_ERROR(
        layers(T, mma, n_tiles, attention_decode_splits(T, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_)));
    if (check_finite_) {
      std::vector<unsigned> bad(static_cast<size_t>(n_run_));
      TAILOR_CUDA_TRY(
          cudaMemcpyAsync(bad.data(), nonfinite_, bad.size() * 4, cudaMemcpyDeviceToHost, stream_),
          "finite check");
      TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
      for (int l = 0; l < n_run_; ++l)
        if (bad[size_t(l)])
          return internal_error(cat("non-finite activations after layer ", l,
                                    " on the first forward pass: the weights ", "overflow in ",
                                    dtype_name(wt_), "; try --dtype bf16 or f32"));
    }
    if (x) {  // a stack runner's output: the residual stream after its last layer, every token
      TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), x_, size_t(T * D) * 4, cudaMemcpyDeviceToHost, stream_),
                      "reading the residual stream");
      TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
      std::memcpy(x->data() + t_base * D, h_out_.data(), size_t(T * D) * 4);
      t_base += T;
      continue;
    }
    for (int64_t r0 = 0; r0 < n_rows; r0 += R) {
      const int64_t n = std::min(R, n_rows - r0);
      // Without logits every entry gives one row (its last token), so the rows done so far index `sampling`.
      if (!sampling.empty())
        TAILOR_RETURN_IF_ERROR(upload_sampling(sampling.subspan(ids->size(), size_t(n))));
      TAILOR_RETURN_IF_ERROR(head(n, r0, false, !sampling.empty()));
      if (logits) {
        TAILOR_CUDA_TRY(
            cudaMemcpyAsync(h_out_.data(), logits_, size_t(n * V) * 4, cudaMemcpyDeviceToHost, stream_),
            "reading logits");
        TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
        const float* src = reinterpret_cast<const float*>(h_out_.data());
        logits->insert(logits->end(), src, src + n * V);
      } else {
        TAILOR_CUDA_TRY(
            cudaMemcpyAsync(h_out_.data(), out_ids_, size_t(n) * 4, cudaMemcpyDeviceToHost, stream_),
            "reading token ids");
        TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "forward pass");
        const int32_t* src = reinterpret_cast<const int32_t*>(h_out_.data());
        ids->insert(ids->end(), src, src + n);
      }
    }
  }
  check_finite_ = false;
  return {};
}

Status CudaRunner::run_decode_graph(std::span<const SeqBatchEntry> batch, std::vector<float>* logits,
                                    std::vector<int32_t>* ids, std::span<const DeviceSampling> sampling,
                                    std::vector<float>* x) {
  const HParams& hp = spec_->hp;
  const int B = int(batch.size());
  const int64_t V = hp.n_vocab, D = hp.n_embd;
  const InputBlock in = host_inputs();
  for (int b = 0; b < B; ++b) {
    in.ids[b] = batch[size_t(b)].tokens[0];
    in.pos[b] = batch[size_t(b)].pos[0];
    in.slot[b] = batch[size_t(b)].slot;
    in.rows[b] = b;
  }
  TAILOR_CUDA_TRY(
      cudaMemcpyAsync(d_in_, h_in_.data(), size_t(chunk_) * 4 * 4, cudaMemcpyHostToDevice, stream_),
      "uploading inputs");
  // Sampling parameters travel like the inputs: uploaded before the replay, read by the graph's sampler.
  const bool sample = !sampling.empty();
  if (sample) TAILOR_RETURN_IF_ERROR(upload_sampling(sampling));
  if (x) {  // stack runner: the graph starts from x_, uploaded outside it
    std::memcpy(h_out_.data(), x->data(), size_t(B * D) * 4);
    TAILOR_CUDA_TRY(cudaMemcpyAsync(x_, h_out_.data(), size_t(B * D) * 4, cudaMemcpyHostToDevice, stream_),
                    "uploading the residual stream");
  }
  const int n_split = attention_decode_splits(B, hp.n_head_kv, dev_.n_sm, opt_.n_ctx, min_keys_);
  const int key = 2 * B + (sample ? 1 : 0);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // First step of this batch size and mode: run it directly (this also lets cuBLASLt pick its algorithms
    // outside the capture), then capture the same launches for the following steps.
    decode_graph_ = true;
    Status st0 = layers(B, false, 0, n_split);
    decode_graph_ = false;
    TAILOR_RETURN_IF_ERROR(st0);
    if (!stack_) TAILOR_RETURN_IF_ERROR(head(B, 0, true, sample));
    TAILOR_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                    "capturing the decode graph");
    decode_graph_ = true;
    Status st = layers(B, false, 0, n_split);
    decode_graph_ = false;
    if (st.ok() && !stack_) st = head(B, 0, true, sample);
    cudaGraph_t g = nullptr;
    const cudaError_t ce = cudaStreamEndCapture(stream_, &g);
    if (!st.ok() || ce != cudaSuccess) {
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      return st.ok() ? cuda_status(ce, "capturing the decode graph") : st;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t ie = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    TAILOR_CUDA_TRY(ie, "instantiating the decode graph");
    graphs_[key] = exec;
  } else {
    if (timing_) cudaEventRecord(timing_events_[0], stream_);
    TAILOR_CUDA_TRY(cudaGraphLaunch(it->second, stream_), "decode step");
    if (timing_) cudaEventRecord(timing_events_[1], stream_);
  }
  if (x) {
    TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), x_, size_t(B * D) * 4, cudaMemcpyDeviceToHost, stream_),
                    "reading the residual stream");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    std::memcpy(x->data(), h_out_.data(), size_t(B * D) * 4);
  } else if (logits) {
    TAILOR_CUDA_TRY(
        cudaMemcpyAsync(h_out_.data(), logits_, size_t(B * V) * 4, cudaMemcpyDeviceToHost, stream_),
        "reading logits");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    const float* src = reinterpret_cast<const float*>(h_out_.data());
    logits->assign(src, src + B * V);
  } else {
    TAILOR_CUDA_TRY(cudaMemcpyAsync(h_out_.data(), out_ids_, size_t(B) * 4, cudaMemcpyDeviceToHost, stream_),
                    "reading token ids");
    TAILOR_CUDA_TRY(cudaStreamSynchronize(stream_), "decode step");
    const int32_t* src = reinterpret_cast<const int32_t*>(h_out_.data());
    ids->assign(src, src + B);
    if (timing_ && it != graphs_.end()) {
      float ms = 0;
      cudaEventElapsedTime(&ms, timing_events_[0], timing_events_[1]);
      graph_ms_ += ms;
      ++graph_steps_;
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Runner>> make_cuda_runner(std::shared_ptr<const ModelSpec> spec,
                                                 const RunnerOptions& opt) {
  auto r = std::make_unique<CudaRunner>(std::move(spec), opt);
  TAILOR_RETURN_IF_ERROR(r->init());
  return std::unique_ptr<Runner>(std::move(r));
}

const CudaRunnerStats* cuda_runner_stats(const Runner& r) {
  const auto* c = dynamic_cast<const CudaRunner*>(&r);
  return c ? &c->stats() : nullptr;
}

}  // namespace tailor
