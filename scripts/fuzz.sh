#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan/UBSan (clang-14) and runs each for a while.
#
#   scripts/fuzz.sh [--seconds N] [--build DIR] [TARGET ...]
#
# TARGET is a name from tests/fuzz (fuzz_json_schema, fuzz_regex, fuzz_grammar_text, fuzz_tokenizer_json,
# fuzz_chat_template, fuzz_safetensors_header); default: all of them, one after another. Seeds come from the
# project's own test data; the growing corpus, logs and any crash files go to out/fuzz/<target>/. The script
# exits non-zero when a target finds a crash, a leak or a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
build=build-fuzz
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 is missing; run scripts/setup.sh" >&2; exit 2; }

if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTAILOR_FUZZ=ON -DTAILOR_CUDA=OFF -DTAILOR_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target "${targets[@]}"

# seed_<target> DIR: writes a few valid inputs into DIR (the first byte of grammar inputs selects options).
seed_fuzz_json_schema() {
  local i=0
  for s in tests/data/grammar/schemas/*.json; do
    { printf '\x00'; cat "$s"; } >"$1/schema$i"; i=$((i + 1))
  done
}
seed_fuzz_regex() {
  local i=0
  for r in '[a-zA-Z]{5,10}@example\.com' '^\d{3}-\d{4}$' '(ab|cd)*e?' '[^"\\]{0,20}' '\p{L}+\s\w*' \
           '(?:x|y){2,}z' '[\u00e9-\u00ff]+' 'a|b|c|'; do
    printf '\x01%s' "$r" >"$1/re$i"; i=$((i + 1))
  done
}
seed_fuzz_grammar_text() {
  printf '\x00root ::= "a" b* [x-z]{1,3}\nb ::= ("c" | "d")+ | "e"?\n' >"$1/g0"
  printf '\x00root ::= obj\nobj ::= "{" ws (pair ("," ws pair)*)? "}"\npair ::= "\\"" [a-z]+ "\\"" ":" ws obj | "1"\nws ::= [ \\t\\n]*\n' >"$1/g1"
  printf '\x00root ::= [^"\\\\] | "\\\\u" [0-9a-f]{4}\n' >"$1/g2"
}

failed=0
for t in "${targets[@]}"; do
  dir="out/fuzz/$t"
  mkdir -p "$dir/corpus" "$dir/seeds" "$dir/artifacts"
  if declare -F "seed_$t" >/dev/null; then "seed_$t" "$dir/seeds"; fi
  echo "== $t: ${seconds}s (log: $dir/log.txt)"
  if "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" "$dir/seeds" >"$dir/log.txt" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$dir/log.txt" | tr '\n' ' '; echo
  else
    echo "!! $t failed; see $dir/log.txt and $dir/artifacts/"; tail -30 "$dir/log.txt"; failed=1
  fi
done
exit $failed
