// The demo model behind `tailor serve --demo`: a small random-weight Qwen3 with the real Qwen3 tokenizer and
// chat template, generated once into a cache folder. Its text is noise, but every API feature works on it.
#pragma once

#include <string>

#include "core/status.h"

namespace tailor {

// $XDG_CACHE_HOME/tailor/demo, else ~/.cache/tailor/demo, else /tmp/tailor-demo.
std::string default_demo_dir();
// Writes the demo model into `dir` unless a complete one is there already; safe when several processes race
// (each writes a private folder and renames it into place). Returns `dir`.
Result<std::string> ensure_demo_model(const std::string& dir);

}  // namespace tailor
