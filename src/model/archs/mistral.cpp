// MistralForCausalLM: Llama blocks without biases; optional sliding_window (recorded; the wave-1 forward
// attends to the whole context, exact while the context stays within the window). HF modeling_mistral.py.
#include "model/archs/arch.h"

namespace tailor {

static Status configure_mistral(const Json& cfg, HParams& hp) {
  if (cfg.contains("sliding_window") && cfg["sliding_window"].is_number_integer())
    hp.sliding_window = cfg["sliding_window"].get<int>();
  return read_rope_scaling(cfg, hp);
}

const ArchDef kMistralArch{Arch::mistral, "MistralForCausalLM", "llama2", configure_mistral};

}  // namespace tailor
