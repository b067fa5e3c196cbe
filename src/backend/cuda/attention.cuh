// Causal grouped-query attention against the paged-by-slot KV cache.
//  - attention_decode: split-K "flash-decoding" on CUDA cores. Any number of query tokens, each with its own
//    slot and position; one block per (key split, KV head, group of up to 4 of its query heads, token), so
//    each K/V row is read from memory once per KV head (the other head groups hit L2). Graph-friendly: the
//    grid is fixed at launch, and each block derives from the position it reads on the device how many splits
//    the context needs and which keys are its own. In the decode graph it also applies RoPE and writes the
//    newest K/V row (AttentionParams::qkv), replacing rope_qkv_store.
//  - attention_prefill: flash-attention-2 style on tensor cores (mma.sync m16n8k16, f16/bf16), tiles of up to
//    kPrefillTileRows consecutive query tokens of one sequence.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/rope.cuh"
#include "core/dtype.h"

namespace tailor::cuda {

// Keys per decode split at least: fewer, fuller splits keep the merge (the kernel's tail) short.
constexpr int kDecodeMinKeysPerSplit = 64;
// Query heads of one KV head that a decode-attention block serves (4 or 8).
constexpr int kDecodeHeadsPerBlock = 4;  // measured: 4 beats 8 by 2.3% on the 7b decode step (H200)

struct AttentionParams {
  const void* q =
      nullptr;  // [n_tok, q_stride] of dtype cache.t; head h at columns [h*head_dim, (h+1)*head_dim)
  int64_t q_stride = 0;
  KvCacheView cache;               // rows 0..pos[t] of slot slots[t] must be written
  const int32_t* pos = nullptr;    // device [n_tok]: absolute position of each query token
  const int32_t* slots = nullptr;  // device [n_tok]
  void* out = nullptr;             // [n_tok, out_stride] of dtype out_t, same head layout as q
  DType out_t = DType::bf16;
  int64_t out_stride = 0;
  int64_t n_tok = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;  // softmax scale (1/sqrt(head_dim) or Granite's attention_multiplier)
  // Decode only: every token of the launch is the only one of its slot, and pos/slots were written before
  // the previous kernel ran (uploaded inputs). Then the keys before each token's position are final, and
  // attention_decode reads them before waiting for the previous kernel (programmatic launch), hiding that
  // memory latency behind it; only the query and the newest key wait.
  bool distinct_slots = false;
  int min_keys_per_split = kDecodeMinKeysPerSplit;  // as given to attention_decode_splits
  int heads_per_block = kDecodeHeadsPerBlock;       // 4 or 8
  // Fused RoPE (decode, needs distinct_slots): with qkv set, q is not read. Each block forms its query heads
  // from the projection output as rope_qkv_store would (bias, Qwen3 q_norm, RoPE, rounded to the cache
  // dtype), and the block that holds a token's newest key writes that K/V row into the cache itself, so the
  // separate rope_qkv_store launch is skipped. Same arguments as rope_qkv_store.
  const float* qkv = nullptr;  // f32 [n_tok, (n_head + 2 n_head_kv) * head_dim]: q heads, k heads, v heads
  const float* qkv_bias = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  float norm_eps = 1e-6f;
  const float* inv_freq = nullptr;  // [head_dim / 2]
};

// Split count (grid size) that fills the GPU for n_tok decode tokens whose contexts hold at most max_keys
// keys. Each launch uses only as many of them as the current positions need (splits of >= 64 keys); 1 active
// split = no merge.
int attention_decode_splits(int64_t n_tok, int n_head_kv, int n_sm, int64_t max_keys,
                            int min_keys = kDecodeMinKeysPerSplit);
size_t attention_decode_workspace_bytes(int64_t n_tok, int n_head, int head_dim, int n_split);
// head_dim: multiple of 8, at most 256; n_split <= 64. With n_split > 1: workspace of
// attention_decode_workspace_bytes, and counters: device uint32 [n_tok * n_head], zeroed once before first
// use and left zero by every launch (the last block of each group to finish merges the splits and resets its
// counter), so a captured graph can replay it. A graph captured with the split count of its longest context
// serves every shorter one. Keep the counters apart from the workspace: other launch
// shapes scribble there.
cudaError_t attention_decode(const AttentionParams& p, int n_split, void* workspace, unsigned int* counters,
                             cudaStream_t stream);

constexpr int kPrefillTileRows = 64;
struct AttentionTile {
  int32_t tok_begin;  // first query token (row of q/out)
  int32_t n_tok;      // 1..kPrefillTileRows, all of one sequence
  int32_t max_pos;    // largest position among them: keys 0..max_pos are read
  int32_t slot;
};
bool attention_prefill_supported(DType kv_t, int head_dim);
// tiles: device array [n_tiles]; order them longest first for load balance.
cudaError_t attention_prefill(const AttentionParams& p, const AttentionTile* tiles, int n_tiles,
                              cudaStream_t stream);

}  // namespace tailor::cuda
