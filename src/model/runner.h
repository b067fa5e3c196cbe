// A Runner executes forward passes of one model on one backend and owns that model's KV cache.
// The engine talks only to this interface; CPU (src/model/cpu_runner.cpp) and CUDA
// (src/backend/cuda/cuda_runner.*) implement it. Batch dimension everywhere: every call takes a list of
// sequences, each in its own KV-cache slot, with explicit positions (a tensor, so M-RoPE's 3-D positions can
// come later without changing callers).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/model_spec.h"
#include "sample/device_sampling.h"

namespace tailor {

struct RunnerOptions {
  int n_ctx = 4096;  // KV capacity per slot (tokens)
  int n_slots = 1;   // sequences that can be live at once (max batch)
  DType kv_dtype = DType::f32;
  // Storage dtype for matrices; f32/f16/bf16. Weights already in this dtype are used in place (mmap).
  DType weight_dtype = DType::bf16;
  // Activation (compute) dtype between ops. f32 is the most accurate; bf16/f16 round every op's output as
  // HF does in those dtypes (and as GPU kernels store activations), for bit-closer agreement with them.
  DType act_dtype = DType::f32;
  bool check_finite_first_pass = true;  // flag Inf/NaN activations on the first forward, naming the layer
  // Layer range, for a GPU/CPU split (split_runner.h): this runner holds decoder layers [layer_begin,
  // layer_end) and the KV cache of those layers only (layer_end -1: through the last layer). A range that
  // ends before the last layer has no final norm / lm_head; see the partial passes in Runner.
  int layer_begin = 0;
  int layer_end = -1;
};

struct SeqBatchEntry {
  int32_t slot = 0;                 // KV-cache slot of this sequence
  std::span<const int32_t> tokens;  // new tokens to run [n_tokens]
  std::span<const int32_t> pos;     // their positions [n_tokens] (usually pos0, pos0+1, ...)
  bool all_logits = false;          // logits for every token (golden tests) instead of only the last
};

class Runner {
 public:
  virtual ~Runner() = default;
  // Runs one step over the batch. Appends to `logits` (resized) rows of n_vocab floats: for each entry in
  // order, n_tokens rows if all_logits, else 1 row (the last token's).
  virtual Status forward(std::span<const SeqBatchEntry> batch, std::vector<float>& logits) = 0;
  // Greedy fast path: ids[i] = argmax of the logits of entry i's last token (all_logits is ignored). Backends
  // that pick on the device (CUDA) override this so logits never leave it; the default runs forward() and
  // picks here.
  virtual Status forward_argmax(std::span<const SeqBatchEntry> batch, std::vector<int32_t>& ids);
  // Sampling fast path: ids[i] = the token drawn from the logits of entry i's last token with params[i]
  // (one per entry; all_logits is ignored), -1 where params[i] leaves no token to draw (its mask allows none
  // with a logit above -inf). The draw is sample_row() (sample/device_sampling.h): a pure function of the
  // logits and params[i], whose seed and step select the uniform, so replaying a step draws the same token.
  // The default runs forward() and sample_row() here; the CUDA runner draws on the GPU and only the ids
  // cross PCIe.
  virtual Status forward_sample(std::span<const SeqBatchEntry> batch, std::span<const DeviceSampling> params,
                                std::vector<int32_t>& ids);
  // True when forward_sample() keeps the logits on the device: callers then prefer it to forward() + a
  // CPU Sampler. The CPU runner says false (its logits are in host memory anyway), so the engine's CPU
  // path, and every seeded CPU output, stays as it was.
  virtual bool samples_on_device() const { return false; }
  virtual const HParams& hparams() const = 0;
  virtual const RunnerOptions& options() const = 0;
  virtual std::string describe() const = 0;  // "cpu: 2 threads, avx512 bf16 matmul" for logs

  // ---- Partial passes over the residual stream, which a GPU/CPU split chains (split_runner.h). The stream
  // x is [n_tokens, n_embd] f32: every token of the batch, entries in order. Runners that cannot do a step
  // return unsupported (the defaults).
  // x = the scaled token embeddings: the stream entering layer 0. Needs the embedding table.
  virtual Status embed(std::span<const SeqBatchEntry> batch, std::vector<float>& x);
  // Runs layers [layer_begin, layer_end) on x in place (x enters layer layer_begin), writing those layers'
  // KV cache at the batch's slots and positions.
  virtual Status forward_layers(std::span<const SeqBatchEntry> batch, std::vector<float>& x);
  // Layers [layer_begin, n_layer) on x, then the final norm and lm_head: logits as forward() returns them.
  virtual Status forward_from_hidden(std::span<const SeqBatchEntry> batch, std::span<const float> x,
                                     std::vector<float>& logits);

 protected:
  // forward() with only each entry's last-token logits (the default forward_argmax/forward_sample's input).
  Status forward_last_logits(std::span<const SeqBatchEntry> batch, std::vector<float>& logits) {
    std::vector<SeqBatchEntry> last(batch.begin(), batch.end());
    for (auto& e : last) e.all_logits = false;
    return forward(last, logits);
  }
};

inline Status Runner::embed(std::span<const SeqBatchEntry>, std::vector<float>&) {
  return unsupported(cat("embed: not available on ", describe()));
}
inline Status Runner::forward_layers(std::span<const SeqBatchEntry>, std::vector<float>&) {
  return unsupported(cat("forward_layers: not available on ", describe()));
}
inline Status Runner::forward_from_hidden(std::span<const SeqBatchEntry>, std::span<const float>,
                                          std::vector<float>&) {
  return unsupported(cat("forward_from_hidden: not available on ", describe()));
}

inline Status Runner::forward_argmax(std::span<const SeqBatchEntry> batch, std::vector<int32_t>& ids) {
  std::vector<float> logits;
  TAILOR_RETURN_IF_ERROR(forward_last_logits(batch, logits));
  const size_t n_vocab = size_t(hparams().n_vocab);
  ids.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const float* row = logits.data() + i * n_vocab;
    size_t best = 0;
    for (size_t j = 1; j < n_vocab; ++j)
      if (row[j] > row[best]) best = j;  // first maximum wins ties, as the CUDA argmax does
    ids[i] = int32_t(best);
  }
  return {};
}

// The end of a runner's layer range (layer_end -1: n_layer), and the check every runner makes at creation.
inline int layer_end_of(const RunnerOptions& o, const HParams& hp) {
  return o.layer_end < 0 ? hp.n_layer : o.layer_end;
}
inline Status check_layer_range(const RunnerOptions& o, const HParams& hp, const char* who) {
  const int end = layer_end_of(o, hp);
  if (o.layer_begin < 0 || o.layer_begin >= end || end > hp.n_layer)
    return invalid_argument(cat(who, ": layer range [", o.layer_begin, ", ", end,
                                ") is empty or outside the model's ", hp.n_layer, " layers"));
  return {};
}

// A runner over RunnerOptions' layer range (the whole model by default). One whose range starts after layer 0
// still holds the embedding table (used in place from the mmap), so a split can embed on the host.
Result<std::unique_ptr<Runner>> make_cpu_runner(std::shared_ptr<const ModelSpec> spec,
                                                const RunnerOptions& opt);

}  // namespace tailor
