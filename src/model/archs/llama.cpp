// LlamaForCausalLM: Llama 2, Llama 3/3.1 (rope_scaling "llama3"). HF modeling_llama.py.
#include "model/archs/arch.h"

namespace tailor {

static Status configure_llama(const Json& cfg, HParams& hp) {
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "attention_bias", hp.attention_bias));
  hp.o_proj_bias = hp.attention_bias;  // LlamaAttention biases o_proj with the same flag
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "mlp_bias", hp.mlp_bias));
  return read_rope_scaling(cfg, hp);
}

const ArchDef kLlamaArch{Arch::llama, "LlamaForCausalLM", "llama3", configure_llama};

}  // namespace tailor
