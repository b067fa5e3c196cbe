// Qwen2ForCausalLM (Qwen2, Qwen2.5): q/k/v projections always carry a bias; o_proj does not. HF
// modeling_qwen2.py.
#include "model/archs/arch.h"

namespace tailor {

static Status configure_qwen2(const Json& cfg, HParams& hp) {
  hp.attention_bias = true;
  hp.o_proj_bias = false;
  // Qwen2 configs carry use_sliding_window=false for every released model; the window is not applied.
  return read_rope_scaling(cfg, hp);
}

const ArchDef kQwen2Arch{Arch::qwen2, "Qwen2ForCausalLM", "qwen3", configure_qwen2};

}  // namespace tailor
