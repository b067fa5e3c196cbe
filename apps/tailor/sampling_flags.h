// Sampler and model-loading flags shared by run, chat, serve and bench.
#pragma once

#include "command.h"
#include "engine/load.h"
#include "sample/sampler.h"

namespace tailor::cli {

inline const std::vector<std::string> kSamplingFlags = {
    "temperature",       "top-k",        "top-p", "min-p", "seed", "repeat-penalty", "presence-penalty",
    "frequency-penalty", "repeat-last-n"};
inline const std::vector<std::string> kLoadFlags = {"ctx",      "threads", "dtype",
                                                    "kv-dtype", "device",  "gpu-layers"};

Result<SamplerParams> sampling_from_args(const Args& a);
Result<LoadOptions> load_options_from_args(const Args& a);

inline const char* kSamplingHelp =
    "sampling:\n"
    "  --temperature T      0 = greedy (exact argmax, deterministic) [0.8]\n"
    "  --top-k K            keep the K most likely tokens (0 = off) [0]\n"
    "  --top-p P            nucleus sampling (1 = off) [1]\n"
    "  --min-p P            drop tokens below P x the top probability (0 = off) [0]\n"
    "  --seed N             random seed; same seed, same tokens [12648430]\n"
    "  --repeat-penalty R   CTRL-style repetition penalty (1 = off) [1]\n"
    "  --presence-penalty X, --frequency-penalty X  OpenAI-style penalties [0]\n"
    "  --repeat-last-n N    tokens the penalties look back over (-1 = all) [64]\n"
    "model:\n"
    "  --ctx N              context length (KV-cache tokens) [4096 or the model's maximum if smaller]\n"
    "  --threads N          CPU threads [all cores]\n"
    "  --dtype D            weight storage dtype: bf16, f16, f32 [the Plan's choice: see `tailor plan`]\n"
    "  --kv-dtype D         CPU KV-cache dtype: f32, f16, bf16 [the Plan's choice]\n"
    "  --device D           auto, cpu or cuda [auto: the Plan decides]\n"
    "  --gpu-layers N       decoder layers on the GPU, the rest on the CPU [as many as fit]\n";

}  // namespace tailor::cli
