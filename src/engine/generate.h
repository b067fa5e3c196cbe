// The generate loop for one sequence in one KV slot: prefill, then sample/decode until a stop condition.
// The server's engine thread batches many of these; the CLI and tests call it directly.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/runner.h"
#include "sample/constraint.h"
#include "sample/sampler.h"

namespace tailor {

struct GenerateOptions {
  SamplerParams sampling;
  int max_new_tokens = 256;
  std::vector<int32_t> stop_ids;  // usually the model's eos ids
  bool ignore_eos = false;        // benchmarks: always generate max_new_tokens
  // With a constraint: from this many generated tokens on, always pick the constraint's finishing token (the
  // way to its shortest complete text), so that a weak or random-weight model still ends a structured output
  // within max_new_tokens. -1 = never steer.
  int finish_after = -1;
};

enum class FinishReason { stop, length, cancelled, constraint_dead };
const char* finish_reason_name(FinishReason r);  // "stop", "length", ... (OpenAI's words where they exist)

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (stop id not included)
  FinishReason finish = FinishReason::length;
  int n_prompt = 0;
  double prompt_ms = 0, decode_ms = 0;  // wall time of the prefill and of the decode steps
};

// on_token(id) is called for every generated id (not the stop id); return false to cancel.
Result<GenerateResult> generate(Runner& runner, int slot, std::span<const int32_t> prompt,
                                const GenerateOptions& opt, TokenConstraint* constraint = nullptr,
                                const std::function<bool(int32_t)>& on_token = {});

}  // namespace tailor
