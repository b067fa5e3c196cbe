// Qwen3ForCausalLM: RMSNorm over each head of q and k (q_norm, k_norm: [head_dim]) before RoPE; explicit
// head_dim; attention_bias from config (false for released models). HF modeling_qwen3.py.
#include "model/archs/arch.h"

namespace tailor {

static Status configure_qwen3(const Json& cfg, HParams& hp) {
  hp.qk_norm = true;
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "attention_bias", hp.attention_bias));
  hp.o_proj_bias = hp.attention_bias;
  return read_rope_scaling(cfg, hp);
}

const ArchDef kQwen3Arch{Arch::qwen3, "Qwen3ForCausalLM", "qwen3", configure_qwen3};

}  // namespace tailor
