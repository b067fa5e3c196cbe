// The CUDA Runner for the Llama family (Llama, Qwen2, Qwen3, Granite, Mistral) on one GPU.
//  - weights uploaded once from the mmap through pinned staging, converted on the GPU to
//  options().weight_dtype
//    (f32/f16/bf16); q/k/v fused into one matrix and gate/up interleaved into one, so a layer is 4 products;
//  - KV cache [layer][k|v][slot][n_head_kv, n_ctx, head_dim] in options().kv_dtype, allocated once;
//  - prefill: cuBLASLt GEMMs + tensor-core flash attention, in chunks of up to 512 tokens;
//  - decode (every entry one token): one CUDA graph per batch size, captured on first use and replayed, with
//  the
//    bandwidth-bound GEMV kernels for batch <= 8; forward_argmax() picks tokens on the device, and
//    forward_sample() draws them there (sample.cuh: temperature, top-k, top-p, min-p, grammar masks), so
//    only token ids come back.
//  - RunnerOptions::layer_end < n_layer makes a stack runner, the GPU part of a split (model/split_runner.h):
//    it uploads layers [0, layer_end) only (no embedding, final norm or lm_head) and offers forward_layers():
//    the residual stream up from the host, the layers (the decode graph too), the stream back once.
// Errors (no device, too little memory, unsupported GPU or dtype) are Status messages naming the fix.
#pragma once

#include <cstdint>
#include <memory>

#include "model/runner.h"

namespace tailor {

Result<std::unique_ptr<Runner>> make_cuda_runner(std::shared_ptr<const ModelSpec> spec,
                                                 const RunnerOptions& opt);

// What `tailor bench` reports besides timings. Null when `r` is not a CUDA runner.
struct CudaRunnerStats {
  int device = 0;
  std::string device_name;
  uint64_t weight_bytes = 0;                 // matrices + vectors resident on the GPU
  uint64_t kv_bytes = 0;                     // the whole KV cache
  uint64_t scratch_bytes = 0;                // activations, workspaces, logits
  uint64_t decode_read_bytes_per_token = 0;  // weights read by one decode step, excluding the KV cache
};
const CudaRunnerStats* cuda_runner_stats(const Runner& r);

}  // namespace tailor
