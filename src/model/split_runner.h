// A model split by layers over two runners, as the Plan decides when the whole model does not fit in VRAM:
// the first N decoder layers on a front runner (the GPU), the rest, the final norm and lm_head on a back
// runner (the CPU), which also holds the embedding table (the Plan keeps it in host RAM for a split). Each
// side owns the KV cache of its own layers. One forward pass:
//   x = back.embed(tokens)                  [n_tokens, n_embd] f32, on the host
//   front.forward_layers(x)                 layers [0, N): x uploaded, run, downloaded once
//   logits = back.forward_from_hidden(x)    layers [N, L) + norm + lm_head
// The split knows only the Runner interface, so two CPU runners make a split too (the CPU tests use that).
#pragma once

#include <memory>
#include <string>

#include "model/runner.h"

namespace tailor {

// `front` holds layers [0, N) (RunnerOptions layer_begin 0, layer_end N, 0 < N < n_layer), `back` holds
// [N, n_layer); both have the same n_ctx and n_slots. The names ("cuda:0", "cpu") go into describe():
// "split: 20/28 layers on cuda:0 (<front>), 8 on cpu (<back>)".
Result<std::unique_ptr<Runner>> make_split_runner(std::unique_ptr<Runner> front, std::string front_name,
                                                  std::unique_ptr<Runner> back, std::string back_name);

// The two parts of a split runner (null when `r` is not one): bench reads the GPU part's statistics.
const Runner* split_front(const Runner& r);
const Runner* split_back(const Runner& r);

}  // namespace tailor
