#!/usr/bin/env bash
# The main job on a built-in demo model: writes a small random-weight Qwen3-architecture model with the real
# Qwen3 tokenizer, shows the plan tailor makes for this machine, and generates text from a chat prompt.
# (Random weights: the text is gibberish, the machinery is real.)
set -euo pipefail
cd "$(dirname "$0")/.."
TAILOR=build/apps/tailor/tailor
DEMO=${DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tailor/demo-qwen3-tiny}
[ -f "$DEMO/config.json" ] || "$TAILOR" gen-model --arch qwen3 --preset tiny --dtype bf16 --out "$DEMO"
"$TAILOR" plan "$DEMO" || true
echo "--- tailor run (greedy, 48 tokens) ---"
"$TAILOR" run "$DEMO" --prompt "Write a haiku about local inference." --temperature 0 --max-tokens 48
