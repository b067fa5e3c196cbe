// Per-architecture hooks: each archs/<name>.cpp reads the config fields only it has and sets the HParams
// flags that select shared blocks in the forward pass (q/k/v bias, q/k norm, multipliers, RoPE scaling).
#pragma once

#include <vector>

#include "core/json.h"
#include "model/model_spec.h"

namespace tailor {

struct ArchDef {
  Arch arch;
  const char* hf_name;  // config.json "architectures"[0]
  const char* family;   // tokenizer family gen-model pairs it with: "qwen3", "llama3", "llama2"
  // Called after the common fields are read; reads arch-specific fields and overrides defaults.
  Status (*configure)(const Json& cfg, HParams& hp);
};

extern const ArchDef kLlamaArch, kQwen2Arch, kQwen3Arch, kGraniteArch, kMistralArch;
const std::vector<const ArchDef*>& all_archs();
const ArchDef& arch_def(Arch a);

// Shared readers for the config fields several architectures use.
Status read_rope_scaling(const Json& cfg, HParams& hp);
Status read_bool(const Json& cfg, const char* key, bool& out);
Status read_float(const Json& cfg, const char* key, float& out);
Status read_int(const Json& cfg, const char* key, int& out);

}  // namespace tailor
