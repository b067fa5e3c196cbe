// RoPE inverse frequencies per architecture, shared by every backend.
#pragma once

#include <vector>

#include "model/model_spec.h"

namespace tailor {

// inv_freq[head_dim/2] with the config's rope_scaling applied (HF modeling_rope_utils.py:
// _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters, _compute_llama3_parameters),
// computed in f32 as HF does so positions rotate by bit-identical angles.
std::vector<float> rope_inv_freq(const HParams& hp);

}  // namespace tailor
