// The engine: one thread that owns the runner, its KV-cache slots and the batch. Requests arrive as typed
// tasks through a bounded queue; each step runs ONE forward pass over every active sequence (new ones join at
// step boundaries and are prefilled in that step's batch, in chunks so a long prompt does not stall the
// others; finished ones leave and free their slot). Per request: sampler state and seed, stop ids, stop
// strings, grammar, token budget, cancellation.
//
// A request's output does not depend on what else is in the batch: the CPU kernels compute each row alone, so
// the same seed gives the same text whether it ran alone or beside 31 others.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/metrics.h"
#include "engine/request.h"
#include "model/runner.h"
#include "tokenizer/tokenizer.h"

namespace tailor {

struct EngineOptions {
  int max_queue = 64;       // requests waiting for a slot; beyond it submit() refuses (HTTP 503)
  int prefill_chunk = 512;  // prompt tokens per step across all prefilling sequences (at least one chunk)
  bool skip_special_tokens = true;  // leave special tokens (<|im_start|>, ...) out of the output text
};

struct EngineSnapshot {
  int queue_depth = 0;  // submitted, waiting for a slot
  int active = 0;       // sequences holding a slot
  int n_slots = 0;
  int64_t kv_tokens = 0;  // KV positions in use over all slots
  int64_t kv_capacity = 0;
};

class Engine {
 public:
  // The runner's n_slots is the batch size; `tokenizer` turns output ids into text (null: text stays empty
  // and stop strings are ignored). Both must outlive the engine. Starts the engine thread.
  static Result<std::unique_ptr<Engine>> create(Runner& runner, const Tokenizer* tokenizer,
                                                const EngineOptions& opt);
  ~Engine();  // shutdown()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues the requests, all or none (a multi-prompt completion is one unit). Errors: invalid_argument for a
  // request that can never run (empty prompt, prompt too long for the context, token id outside the
  // vocabulary), out_of_memory when the queue is full (retry later), cancelled after shutdown().
  Result<std::vector<std::shared_ptr<RequestHandle>>> submit(std::vector<EngineRequest> requests);

  EngineSnapshot snapshot() const;
  const EngineMetrics& metrics() const { return metrics_; }
  EngineMetrics& metrics() { return metrics_; }
  int n_ctx() const { return n_ctx_; }
  int n_vocab() const { return n_vocab_; }

  // Ends every queued and active request with RequestEnd::cancelled and joins the thread. Idempotent.
  void shutdown();

 private:
  struct Seq;
  struct Pending {
    std::shared_ptr<RequestHandle> handle;
    EngineRequest req;
    std::chrono::steady_clock::time_point t_submit;
  };

  Engine(Runner& runner, const Tokenizer* tokenizer, const EngineOptions& opt);
  void loop();
  void admit();
  void step();
  void prune();  // drops finished sequences, updates the KV gauge
  // Takes the token of a sequence that wanted one this step: drawn here from `logits`, or (logits null) the
  // id the runner drew on the device.
  void sample_one(Seq& s, float* logits, int32_t device_id);
  // The constraint's mask for s's next token into buf; *force = the finishing token when s is steered to its
  // end (-1 otherwise).
  TokenMask constraint_mask(Seq& s, std::span<uint32_t> buf, int32_t* force);
  // s's DeviceSampling for this step (its mask, if any, written to buf), filled before the forward pass.
  DeviceSampling device_params(Seq& s, std::span<uint32_t> buf);
  void finish(Seq& s, RequestEnd end, Status st = {});
  void emit(Seq& s, const std::string& text, int n_tokens);

  Runner& runner_;
  const Tokenizer* tok_;
  EngineOptions opt_;
  int n_ctx_ = 0, n_vocab_ = 0, n_slots_ = 0;
  EngineMetrics metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  std::atomic<int> active_count_{0};
  std::atomic<int64_t> kv_tokens_{0};

  // Engine thread only.
  std::vector<std::unique_ptr<Seq>> active_;
  std::vector<int> free_slots_;
  std::vector<float> logits_;
  std::vector<SeqBatchEntry> batch_;  // per-step scratch, reused
  std::vector<Seq*> who_;
  std::vector<char> wants_sample_;
  std::vector<int32_t> pos_;
  std::vector<uint32_t> mask_;
  std::vector<DeviceSampling> dsample_;  // device sampling: one per batch entry
  std::vector<uint32_t> dmasks_;         // [batch entries, mask words]
  std::vector<int32_t> ids_;             // tokens drawn on the device
  std::thread thread_;
};

}  // namespace tailor
