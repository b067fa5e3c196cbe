#include "engine/engine.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "engine/stop_strings.h"
#include "sample/device_sampling.h"

namespace tailor {

using Clock = std::chrono::steady_clock;

static double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Engine::Seq {
  std::shared_ptr<RequestHandle> handle;
  EngineRequest req;
  int slot = 0;
  std::vector<int32_t> history;  // prompt + generated ids; history[i] sits at KV position i
  int n_past = 0;                // tokens already in the KV cache
  int n_prompt = 0, n_gen = 0;
  Sampler sampler;
  std::unique_ptr<StreamDecoder> decoder;
  StopStringMatcher stops;
  FinishingConstraint* finishing = nullptr;  // req.constraint when it can steer
  // Drawn by sample_row() semantics (Philox keyed by the seed, counted by n_gen), on the device when the
  // whole step can be: the runner samples on its device and no penalty needs the CPU. Decided at admission,
  // so a request's tokens never depend on which other requests share its steps.
  bool philox = false;
  Clock::time_point t_submit, t_admit, t_first, t_last;
  bool done = false;

  Seq(EngineRequest r, const SamplerParams& sp) : req(std::move(r)), sampler(sp) {}
};

Engine::Engine(Runner& runner, const Tokenizer* tokenizer, const EngineOptions& opt)
    : runner_(runner), tok_(tokenizer), opt_(opt) {
  n_ctx_ = runner.options().n_ctx;
  n_slots_ = runner.options().n_slots;
  n_vocab_ = runner.hparams().n_vocab;
  for (int i = n_slots_ - 1; i >= 0; --i) free_slots_.push_back(i);
  mask_.resize(size_t(n_vocab_ + 31) / 32);
}

Result<std::unique_ptr<Engine>> Engine::create(Runner& runner, const Tokenizer* tokenizer,
                                               const EngineOptions& opt) {
  if (opt.max_queue < 0) return invalid_argument("engine: max_queue must be >= 0");
  if (opt.prefill_chunk <= 0) return invalid_argument("engine: prefill_chunk must be > 0");
  std::unique_ptr<Engine> e(new Engine(runner, tokenizer, opt));
  e->thread_ = std::thread([p = e.get()] { p->loop(); });
  return e;
}

Engine::~Engine() {
  shutdown();
}

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::vector<std::shared_ptr<RequestHandle>>> Engine::submit(std::vector<EngineRequest> requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const std::string which = requests.size() > 1 ? cat("prompt ", i, ": ") : std::string();
    if (r.prompt.empty()) return invalid_argument(which + "the prompt is empty: give at least one token");
    if (int64_t(r.prompt.size()) >= n_ctx_)
      return invalid_argument(cat(which, "the prompt has ", r.prompt.size(), " tokens but the context holds ",
                                  n_ctx_, " (one more is needed to generate); shorten it or raise --ctx"));
    for (int32_t id : r.prompt)
      if (id < 0 || id >= n_vocab_)
        return invalid_argument(
            cat(which, "token id ", id, " is outside the vocabulary [0, ", n_vocab_, ")"));
    if (r.max_new_tokens < 0) return invalid_argument(which + "max_new_tokens must be >= 0");
    TAILOR_RETURN_IF_ERROR(validate(r.sampling));
  }
  std::vector<std::shared_ptr<RequestHandle>> handles;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return Status(ErrorCode::cancelled, "the engine is shutting down");
    // Requests that can start at once do not count against the queue limit: what would wait after the next
    // admission is everything live beyond the slots.
    const int64_t live = int64_t(active_count_.load()) + int64_t(queue_.size());
    const int64_t would_wait = std::max<int64_t>(0, live + int64_t(requests.size()) - n_slots_);
    if (would_wait > opt_.max_queue && !requests.empty()) {
      metrics_.requests_rejected.fetch_add(requests.size());
      return out_of_memory(cat("the server is busy: ", std::max<int64_t>(0, live - n_slots_),
                               " requests are waiting for ", n_slots_, " busy slots (queue limit ",
                               opt_.max_queue, "); retry shortly"));
    }
    const auto now = Clock::now();
    for (auto& r : requests) {
      auto h = std::make_shared<RequestHandle>();
      handles.push_back(h);
      queue_.push_back(Pending{h, std::move(r), now});
    }
    metrics_.requests_submitted.fetch_add(requests.size());
  }
  cv_.notify_all();
  return handles;
}

EngineSnapshot Engine::snapshot() const {
  EngineSnapshot s;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s.queue_depth = int(queue_.size());
  }
  s.active = active_count_.load();
  s.n_slots = n_slots_;
  s.kv_tokens = kv_tokens_.load();
  s.kv_capacity = int64_t(n_slots_) * n_ctx_;
  return s;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || !active_.empty(); });
      if (stop_) break;
    }
    admit();
    if (!active_.empty()) step();
  }
  // Shutdown: everything still queued or running ends as cancelled.
  std::deque<Pending> rest;
  {
    std::lock_guard<std::mutex> lk(mu_);
    rest.swap(queue_);
  }
  for (auto& p : rest) {
    EngineEvent e;
    e.end = RequestEnd::cancelled;
    e.n_prompt = int(p.req.prompt.size());
    metrics_.requests_finished[int(RequestEnd::cancelled)].fetch_add(1);
    p.handle->push_final(std::move(e));
  }
  for (auto& s : active_)
    if (!s->done) finish(*s, RequestEnd::cancelled);
  active_.clear();
}

void Engine::admit() {
  std::vector<Pending> taken, dropped;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->handle->cancelled()) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    while (!queue_.empty() && free_slots_.size() > taken.size()) {
      taken.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    // Counted as active while still under the lock, so submit() never sees them in neither place.
    active_count_.fetch_add(int(taken.size()));
  }
  for (auto& p : dropped) {
    EngineEvent e;
    e.end = RequestEnd::cancelled;
    e.n_prompt = int(p.req.prompt.size());
    e.timings.queue_ms = ms_between(p.t_submit, Clock::now());
    metrics_.requests_finished[int(RequestEnd::cancelled)].fetch_add(1);
    p.handle->push_final(std::move(e));
  }
  const auto now = Clock::now();
  for (auto& p : taken) {
    const SamplerParams sp = p.req.sampling;
    auto s = std::make_unique<Seq>(std::move(p.req), sp);
    s->handle = std::move(p.handle);
    s->slot = free_slots_.back();
    free_slots_.pop_back();
    s->history = s->req.prompt;
    s->n_prompt = int(s->req.prompt.size());
    if (tok_) s->decoder = std::make_unique<StreamDecoder>(*tok_, opt_.skip_special_tokens);
    if (tok_) s->stops = StopStringMatcher(s->req.stop_strings);
    s->finishing = dynamic_cast<FinishingConstraint*>(s->req.constraint.get());
    s->philox = runner_.samples_on_device() && fits_device_sampling(s->req.sampling);
    s->t_submit = p.t_submit;
    s->t_admit = now;
    metrics_.queue_time.observe(ms_between(p.t_submit, now) / 1e3);
    metrics_.prompt_tokens.fetch_add(uint64_t(s->n_prompt));
    Seq& ref = *s;
    active_.push_back(std::move(s));
    if (ref.req.max_new_tokens == 0) finish(ref, RequestEnd::length);
  }
  prune();
}

void Engine::step() {
  // Cancelled requests leave before the pass.
  for (auto& s : active_)
    if (!s->done && s->handle->cancelled()) finish(*s, RequestEnd::cancelled);
  prune();
  if (active_.empty()) return;

  // One entry per sequence: a prompt chunk while prefilling, else the last sampled token. Buffers are
  // members, reused every step; positions are filled once all lengths are known (the spans point into pos_).
  batch_.clear();
  who_.clear();
  wants_sample_.clear();
  int prefill_budget = opt_.prefill_chunk;
  size_t n_pos = 0;
  for (auto& sp : active_) {
    Seq& s = *sp;
    int n = 1;  // decoding: history.back() at position n_past
    bool sample_after = true;
    if (s.n_past < s.n_prompt) {
      const int left = s.n_prompt - s.n_past;
      n = std::min(left, prefill_budget);
      if (n <= 0) continue;  // the budget is spent: this prompt continues next step
      prefill_budget -= n;
      sample_after = (n == left);
    }
    SeqBatchEntry e;
    e.slot = s.slot;
    e.tokens = std::span<const int32_t>(s.history.data() + s.n_past, size_t(n));
    batch_.push_back(e);
    who_.push_back(&s);
    wants_sample_.push_back(sample_after);
    n_pos += size_t(n);
  }
  if (batch_.empty()) return;
  pos_.resize(n_pos);
  size_t off = 0;
  for (size_t i = 0; i < batch_.size(); ++i) {
    const size_t n = batch_[i].tokens.size();
    for (size_t k = 0; k < n; ++k) pos_[off + k] = int32_t(who_[i]->n_past + int(k));
    batch_[i].pos = std::span<const int32_t>(pos_.data() + off, n);
    off += n;
  }
  auto& batch = batch_;
  auto& who = who_;
  auto& wants_sample = wants_sample_;

  // Only token ids come back when every sequence drawing this step can draw on the device; otherwise the
  // logits do, and philox sequences draw here with the same semantics (sample_row).
  bool on_device = runner_.samples_on_device();
  for (size_t i = 0; i < who.size(); ++i)
    if (wants_sample[i] && !who[i]->philox) on_device = false;
  Status st;
  if (on_device) {
    const size_t words = mask_.size();
    dsample_.assign(batch.size(), DeviceSampling{});  // rows that draw nothing: greedy, no mask (ignored)
    if (dmasks_.size() < batch.size() * words) dmasks_.resize(batch.size() * words);
    for (size_t i = 0; i < who.size(); ++i)
      if (wants_sample[i]) dsample_[i] = device_params(*who[i], {dmasks_.data() + i * words, words});
    st = runner_.forward_sample(batch, dsample_, ids_);
  } else {
    st = runner_.forward(batch, logits_);
  }
  metrics_.steps.fetch_add(1);
  metrics_.batch_size.observe(double(batch.size()));
  if (!st.ok()) {
    log_error("engine: forward pass failed: ", st.message());
    for (Seq* s : who) finish(*s, RequestEnd::error, st);
  } else {
    uint64_t toks = 0;
    for (size_t i = 0; i < who.size(); ++i) {
      Seq& s = *who[i];
      s.n_past += int(batch[i].tokens.size());
      toks += batch[i].tokens.size();
      if (wants_sample[i]) {
        if (on_device)
          sample_one(s, nullptr, ids_[i]);
        else
          sample_one(s, logits_.data() + i * size_t(n_vocab_), -1);
      }
    }
    metrics_.step_tokens.fetch_add(toks);
  }
  prune();
}

void Engine::prune() {
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& s) { return s->done; }),
                active_.end());
  int64_t kv = 0;
  for (auto& s : active_) kv += s->n_past;
  kv_tokens_.store(kv);
}

TokenMask Engine::constraint_mask(Seq& s, std::span<uint32_t> buf, int32_t* force) {
  std::fill(buf.begin(), buf.end(), 0u);
  s.req.constraint->fill_mask(buf);
  *force = -1;
  if (s.finishing && s.req.finish_after >= 0 && s.n_gen >= s.req.finish_after) {
    const int32_t t = s.finishing->finishing_token();
    if (t >= 0 && t < n_vocab_ && mask_allows(buf, t)) *force = t;
  }
  return buf;
}

DeviceSampling Engine::device_params(Seq& s, std::span<uint32_t> buf) {
  TokenMask mask;
  TokenConstraint* c = s.req.constraint.get();
  // Not when sample_one() will end the sequence before looking at the token.
  const bool ends = s.n_gen >= s.req.max_new_tokens || int64_t(s.history.size()) >= n_ctx_;
  if (c && !ends && !c->finished()) {
    int32_t force = -1;
    mask = constraint_mask(s, buf, &force);
    if (force >= 0) {  // steered to the end: the finishing token is the only one allowed (a certain pick)
      std::fill(buf.begin(), buf.end(), 0u);
      buf[size_t(force) >> 5] = 1u << (force & 31);
    }
  }
  return device_sampling(s.req.sampling, uint64_t(s.n_gen), mask);
}

void Engine::sample_one(Seq& s, float* logits, int32_t device_id) {
  const auto now = Clock::now();
  if (s.n_gen >= s.req.max_new_tokens || int64_t(s.history.size()) >= n_ctx_) {
    return finish(s, RequestEnd::length);
  }
  TokenConstraint* c = s.req.constraint.get();
  if (c && c->finished()) return finish(s, RequestEnd::stop);
  int32_t id = device_id;
  if (logits) {
    TokenMask mask;
    if (c) {
      int32_t force = -1;
      mask = constraint_mask(s, mask_, &force);
      if (force >= 0) {
        float top = -INFINITY;
        for (int i = 0; i < n_vocab_; ++i) top = std::max(top, logits[i]);
        logits[force] = (std::isfinite(top) ? top : 0.0f) + 1000.0f;  // a certain pick at any temperature
      }
    }
    if (s.philox) {
      id = sample_row(device_sampling(s.req.sampling, uint64_t(s.n_gen), mask), {logits, size_t(n_vocab_)});
    } else {
      // Penalties look at the whole history, or only at the output (OpenAI's presence/frequency penalties).
      std::span<const int32_t> seen(s.history);
      if (!s.req.penalize_prompt) seen = seen.subspan(size_t(s.n_prompt));
      id = s.sampler.sample({logits, size_t(n_vocab_)}, seen, mask);
    }
  }
  if (id < 0) return finish(s, RequestEnd::constraint_dead);
  if (c) {
    Status st = c->accept(id);
    if (!st.ok()) return finish(s, RequestEnd::error, st.with_context("grammar: "));
  }
  if (s.n_gen == 0) {
    s.t_first = now;
    metrics_.time_to_first_token.observe(ms_between(s.t_submit, now) / 1e3);
  } else {
    metrics_.time_per_output_token.observe(ms_between(s.t_last, now) / 1e3);
  }
  s.t_last = now;
  const bool is_stop = !s.req.ignore_eos &&
                       std::find(s.req.stop_ids.begin(), s.req.stop_ids.end(), id) != s.req.stop_ids.end();
  if (is_stop) return finish(s, RequestEnd::stop);
  s.history.push_back(id);
  ++s.n_gen;
  metrics_.generated_tokens.fetch_add(1);
  if (s.decoder) {
    std::string text = s.stops.push(s.decoder->push(id));
    emit(s, text, 1);
    if (s.stops.stopped()) return finish(s, RequestEnd::stop);
  } else {
    emit(s, {}, 1);
  }
  if (c && c->finished()) return finish(s, RequestEnd::stop);
  if (s.n_gen >= s.req.max_new_tokens || int64_t(s.history.size()) >= n_ctx_)
    return finish(s, RequestEnd::length);
}

void Engine::emit(Seq& s, const std::string& text, int n_tokens) {
  s.handle->push_text(text, n_tokens);
}

void Engine::finish(Seq& s, RequestEnd end, Status st) {
  if (s.done) return;
  s.done = true;
  const auto now = Clock::now();
  // Text still held by the decoder (an unfinished UTF-8 sequence) or the stop matcher (a possible stop
  // prefix).
  if (s.decoder && end != RequestEnd::cancelled && !s.stops.stopped()) {
    std::string tail = s.stops.push(s.decoder->flush());
    tail += s.stops.flush();
    if (!tail.empty()) s.handle->push_text(std::move(tail), 0);
  }
  EngineEvent e;
  e.end = end;
  e.status = std::move(st);
  e.n_prompt = s.n_prompt;
  e.n_generated = s.n_gen;
  e.timings.queue_ms = ms_between(s.t_submit, s.t_admit);
  if (s.n_gen > 0) {
    e.timings.prompt_ms = ms_between(s.t_admit, s.t_first);
    e.timings.decode_ms = ms_between(s.t_first, now);
  } else {
    e.timings.prompt_ms = ms_between(s.t_admit, now);
  }
  // The slot is released before the client hears of the end, so a client that then reads /metrics sees it
  // free.
  free_slots_.push_back(s.slot);
  active_count_.fetch_sub(1);
  s.req.constraint.reset();
  metrics_.requests_finished[int(end)].fetch_add(1);
  metrics_.request_duration.observe(ms_between(s.t_submit, now) / 1e3);
  s.handle->push_final(std::move(e));
}

}  // namespace tailor
