#include "engine/generate.h"

#include <algorithm>
#include <chrono>

#include "sample/device_sampling.h"

namespace tailor {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::stop:
      return "stop";
    case FinishReason::length:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
    case FinishReason::constraint_dead:
      return "constraint_dead";
  }
  return "unknown";
}

Result<GenerateResult> generate(Runner& runner, int slot, std::span<const int32_t> prompt,
                                const GenerateOptions& opt, TokenConstraint* constraint,
                                const std::function<bool(int32_t)>& on_token) {
  TAILOR_RETURN_IF_ERROR(validate(opt.sampling));
  const HParams& hp = runner.hparams();
  const int n_ctx = runner.options().n_ctx;
  if (prompt.empty()) return invalid_argument("the prompt is empty: give at least one token");
  if (int64_t(prompt.size()) >= n_ctx)
    return invalid_argument(cat("the prompt has ", prompt.size(), " tokens but the context holds ", n_ctx,
                                "; shorten it or raise --ctx"));
  if (opt.max_new_tokens < 0) return invalid_argument("max_new_tokens must be >= 0");
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
  };

  GenerateResult res;
  res.n_prompt = int(prompt.size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<int32_t> pos(prompt.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = int32_t(i);
  std::vector<float> logits;
  Sampler sampler(opt.sampling);
  std::vector<uint32_t> mask(size_t(hp.n_vocab + 31) / 32);
  // Device sampling: the runner draws next to the logits and only the token id comes back. The draw of step
  // s is sample_row() with (seed, s): reproducible per backend, but not the CPU Sampler's stream.
  const bool on_device = runner.samples_on_device() && fits_device_sampling(opt.sampling);
  std::vector<int32_t> ids;
  // The mask for token `step` (empty without a constraint). Past finish_after, only the token that heads for
  // the shortest valid end is allowed: a certain pick at any temperature, on either path.
  auto constraint_mask = [&](int step) -> TokenMask {
    if (!constraint || constraint->finished()) return {};
    std::fill(mask.begin(), mask.end(), 0u);
    constraint->fill_mask(mask);
    if (opt.finish_after >= 0 && step >= opt.finish_after) {
      const int32_t t = constraint->finishing_token();
      if (t >= 0 && t < hp.n_vocab && mask_allows(mask, t)) {
        std::fill(mask.begin(), mask.end(), 0u);
        mask[size_t(t) >> 5] |= 1u << (t & 31);
      }
    }
    return mask;
  };
  // Runs `e`; on the device path also draws token `step` there, under the constraint's mask for it (which
  // is known before the pass: it depends only on the tokens accepted so far).
  auto pass = [&](const SeqBatchEntry& e, int step) -> Status {
    if (!on_device) return runner.forward({&e, 1}, logits);
    const DeviceSampling d = device_sampling(opt.sampling, uint64_t(step), constraint_mask(step));
    return runner.forward_sample({&e, 1}, {&d, 1}, ids);
  };

  auto t0 = clock::now();
  SeqBatchEntry e{slot, prompt, pos, false};
  TAILOR_RETURN_IF_ERROR(pass(e, 0));
  res.prompt_ms = ms_since(t0);
  auto is_stop = [&](int32_t id) {
    return !opt.ignore_eos && std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) != opt.stop_ids.end();
  };

  t0 = clock::now();
  for (int step = 0;; ++step) {
    if (constraint && constraint->finished()) {
      res.finish = FinishReason::stop;
      break;
    }
    if (step >= opt.max_new_tokens) {
      res.finish = FinishReason::length;
      break;
    }
    if (int64_t(history.size()) >= n_ctx) {
      res.finish = FinishReason::length;  // context full
      break;
    }
    int32_t id = on_device ? ids[0] : -1;
    if (!on_device) {
      id = sampler.sample({logits.data(), size_t(hp.n_vocab)}, history, constraint_mask(step));
    }
    if (id < 0) {
      res.finish = FinishReason::constraint_dead;  // the grammar allowed no token: report, never spin
      break;
    }
    if (constraint) TAILOR_RETURN_IF_ERROR(constraint->accept(id));
    if (is_stop(id)) {
      res.finish = FinishReason::stop;
      break;
    }
    res.tokens.push_back(id);
    history.push_back(id);
    if (on_token && !on_token(id)) {
      res.finish = FinishReason::cancelled;
      break;
    }
    if (constraint && constraint->finished()) {
      res.finish = FinishReason::stop;
      break;
    }
    if (step + 1 >= opt.max_new_tokens) {
      res.finish = FinishReason::length;
      break;
    }
    const int32_t p = int32_t(history.size() - 1);
    SeqBatchEntry d{slot, {&history.back(), 1}, {&p, 1}, false};
    TAILOR_RETURN_IF_ERROR(pass(d, step + 1));
  }
  res.decode_ms = ms_since(t0);
  return res;
}

}  // namespace tailor
