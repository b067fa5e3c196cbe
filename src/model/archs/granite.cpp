// GraniteForCausalLM: Llama blocks with four scalars (HF modeling_granite.py):
//   h0 = embed * embedding_multiplier;  h += attn(...) * residual_multiplier;  h += mlp(...) *
//   residual_multiplier; attention scale = attention_multiplier (instead of 1/sqrt(head_dim));  logits =
//   lm_head(h) / logits_scaling.
#include "model/archs/arch.h"

namespace tailor {

static Status configure_granite(const Json& cfg, HParams& hp) {
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "attention_bias", hp.attention_bias));
  hp.o_proj_bias = hp.attention_bias;
  TAILOR_RETURN_IF_ERROR(read_bool(cfg, "mlp_bias", hp.mlp_bias));
  TAILOR_RETURN_IF_ERROR(read_float(cfg, "embedding_multiplier", hp.embedding_multiplier));
  TAILOR_RETURN_IF_ERROR(read_float(cfg, "residual_multiplier", hp.residual_multiplier));
  TAILOR_RETURN_IF_ERROR(read_float(cfg, "logits_scaling", hp.logits_scaling));
  float am = 0;
  if (cfg.contains("attention_multiplier")) {
    TAILOR_RETURN_IF_ERROR(read_float(cfg, "attention_multiplier", am));
    hp.attention_multiplier = am;
  }
  if (hp.logits_scaling == 0) return invalid_argument("config.json: logits_scaling must not be 0");
  return read_rope_scaling(cfg, hp);
}

const ArchDef kGraniteArch{Arch::granite, "GraniteForCausalLM", "llama3", configure_granite};

}  // namespace tailor
