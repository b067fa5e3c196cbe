// What flows between the HTTP threads and the engine thread: typed requests in, events out. No JSON here.
//
//   auto handles = engine.submit(std::move(requests));   // queued; the engine thread picks them up
//   std::vector<EngineEvent> ev;
//   while (!handle->next(ev, 100ms)) { ... send ev's text ... }  // until the final event
//   handle->cancel();                                     // client gone: the slot is freed at the next step
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "sample/constraint.h"
#include "sample/sampler.h"

namespace tailor {

// A constraint that must say how to finish quickly: the token that starts its shortest completion (an
// end-of-sequence id once the text may end). The engine uses it only when a request asks to be steered to the
// end after a number of tokens (random-weight models wander inside strings for thousands of tokens).
class FinishingConstraint : public TokenConstraint {
 public:
  int32_t finishing_token() override = 0;  // -1 when there is none
};

struct EngineRequest {
  std::vector<int32_t> prompt;  // token ids, at least one, fewer than the context length
  SamplerParams sampling;
  int max_new_tokens = 256;
  std::vector<int32_t> stop_ids;          // end-of-sequence ids (not part of the output)
  std::vector<std::string> stop_strings;  // the output ends before the first occurrence of any of them
  bool ignore_eos = false;
  // Whether the sampler's penalties count prompt tokens (llama.cpp style) or only generated ones (OpenAI's
  // presence/frequency penalties).
  bool penalize_prompt = true;
  std::unique_ptr<TokenConstraint> constraint;  // grammar (structured output); null = free text
  // With a FinishingConstraint: after this many generated tokens, always pick its finishing token. -1 =
  // never.
  int finish_after = -1;
};

struct RequestTimings {
  double queue_ms = 0;   // submitted -> given a slot
  double prompt_ms = 0;  // given a slot -> first token sampled (prefill, in one or more steps)
  double decode_ms = 0;  // first token -> finished
};

enum class RequestEnd { stop, length, cancelled, constraint_dead, error };
const char* request_end_name(RequestEnd e);  // "stop", "length", "cancelled", "constraint_dead", "error"

struct EngineEvent {
  std::string text;  // new output text: complete UTF-8, stop strings withheld
  int n_tokens = 0;  // tokens generated since the previous event
  bool done = false;
  // Set on the final event (done = true):
  RequestEnd end = RequestEnd::length;
  Status status;  // why the request failed when end == error
  int n_prompt = 0, n_generated = 0;
  RequestTimings timings;
};

// One request's mailbox. The engine pushes, one HTTP thread reads. Text pushed while the reader is busy is
// merged into one event, so a slow reader never builds a long queue.
class RequestHandle {
 public:
  // Waits up to `timeout` for events and appends them to `out`. Returns true once the final event has been
  // delivered (by this call or an earlier one).
  bool next(std::vector<EngineEvent>& out, std::chrono::milliseconds timeout);
  // Asks the engine to stop this request; it ends with RequestEnd::cancelled at the next step boundary.
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancel_.load(std::memory_order_relaxed); }
  bool finished() const;

  // Engine side.
  void push_text(std::string text, int n_tokens);
  void push_final(EngineEvent e);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<EngineEvent> events_;
  bool final_pushed_ = false, final_delivered_ = false;
  std::atomic<bool> cancel_{false};
};

}  // namespace tailor
