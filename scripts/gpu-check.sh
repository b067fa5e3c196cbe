#!/usr/bin/env bash
# Everything the GPU machine is for, in one call: build (Release, CUDA for TAILOR_CUDA_ARCHS, default 90a), the
# GPU tests and the other tests, the GEMV-vs-cuBLAS micro-benchmark, a Qwen2.5-7B-shaped random model written to
# the local disk, `tailor bench` at batch 1 and 8 (bf16) and batch 1 (f16), and optionally the peers (HF
# transformers, llama.cpp) on the same machine. Logs and a summary go to $OUT (default ./out).
#
# usage: scripts/gpu-check.sh [--prebuilt DIR] [--no-tests] [--no-bench] [--peers hf,llama,server]
#                             [--model DIR] [--jobs N] [--tokenizer DIR]
#   --prebuilt DIR  use binaries built elsewhere (DIR/bin: tailor, test_*, bench_cuda_gemv; DIR/lib: extra .so)
#                   instead of building here. The lent GPU image has cmake, ninja, gtest and nlohmann-json but no
#                   pkg-config files for pcre2/utf8proc, so tailor does not configure there (seen 2026-11-21):
#                   build on the dev machine, then `scripts/gpu-check.sh --pack build-dir` writes
#                   .gpu/prebuilt.tar.xz (~6 MB; .gpu/ is git-ignored); carry .gpu and start the device command
#                   with `tar -C .gpu -xJf .gpu/prebuilt.tar.xz && scripts/gpu-check.sh --prebuilt .gpu/prebuilt`.
#   --peers LIST    hf: .peers/hf_baseline.py (copy of ../shared/peers/hf_baseline.py);
#                   llama: .peers/gitRelease.bundle + .peers/make_random_qwen2_gguf.py (see docs in PERF.md).
#                   server: the server throughput benchmark (issue 5) against llama.cpp's llama-server with the
#                   same requests: 7b on the GPU, 0.5b on the CPU (GPU hidden from both). Needs --tokenizer.
#   --tokenizer DIR a real tokenizer folder for the generated models (the npm Qwen tokenizer's models/ folder,
#                   carried as .gpu/tok-qwen3); without it the 7b model is written with no tokenizer.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
PREBUILT="" TESTS=1 BENCH=1 PEERS="" MODEL=/tmp/tailor-7b JOBS=$(nproc) TOK=-
if [ "${1:-}" = "--pack" ]; then  # dev machine: package a CUDA build for the GPU machine
  B=${2:?--pack BUILD_DIR}
  rm -rf .gpu/prebuilt .gpu/prebuilt.tar.xz && mkdir -p .gpu/prebuilt/bin .gpu/prebuilt/lib || exit 1
  cp "$B/apps/tailor/tailor" "$B/tests/test_cuda" "$B/bench/bench_cuda_gemv" "$B/bench/bench_server_throughput" \
    .gpu/prebuilt/bin/ || exit 1
  strip .gpu/prebuilt/bin/*
  # Shared libraries the GPU image may lack (its libc, libstdc++, OpenSSL and zlib are newer or equal).
  for l in $(ldd "$B/apps/tailor/tailor" | awk '/utf8proc|httplib|brotli|pcre2/ {print $3}'); do
    cp -L "$l" .gpu/prebuilt/lib/
  done
  echo "$ROOT" >.gpu/prebuilt/source_dir  # test fixtures are found through the compiled-in source path
  tar -C .gpu -cJf .gpu/prebuilt.tar.xz prebuilt && rm -rf .gpu/prebuilt && ls -la .gpu/prebuilt.tar.xz
  exit 0
fi
while [ $# -gt 0 ]; do
  case $1 in
    --prebuilt) PREBUILT=$2; shift ;;
    --no-tests) TESTS=0 ;;
    --no-bench) BENCH=0 ;;
    --peers) PEERS=$2; shift ;;
    --model) MODEL=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --tokenizer) TOK=$(cd "$2" && pwd); shift ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
say() { echo "== $*" | tee -a "$SUMMARY"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

# ---- machine ---------------------------------------------------------------------------------------------------
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1
  nvcc --version 2>&1 | tail -1
  echo "cores: $(nproc)"; free -g | head -2; df -h /tmp | tail -1
} >"$OUT/machine.txt" 2>&1
say "machine: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"

# cuBLAS/cudart: the toolkit's, else the ones PyTorch's wheels carry.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null); do
  [ -e "$d/libcublasLt.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done

# ---- build -----------------------------------------------------------------------------------------------------
if [ -n "$PREBUILT" ]; then
  BIN=$ROOT/$PREBUILT/bin
  [ -d "$ROOT/$PREBUILT/lib" ] && export LD_LIBRARY_PATH="$ROOT/$PREBUILT/lib:${LD_LIBRARY_PATH:-}"
  # Binaries built elsewhere have that checkout's path compiled in (TAILOR_SOURCE_DIR, for test fixtures).
  src_dir=$(cat "$ROOT/$PREBUILT/source_dir" 2>/dev/null)
  if [ -n "$src_dir" ] && [ ! -e "$src_dir" ]; then mkdir -p "$(dirname "$src_dir")" && ln -s "$ROOT" "$src_dir"; fi
  say "build: prebuilt binaries from $PREBUILT ($(ls "$BIN" | tr '\n' ' '))"
else
  B=$ROOT/build-gpu
  if cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAILOR_CUDA=ON \
       -DTAILOR_CUDA_ARCHS="${TAILOR_CUDA_ARCHS:-90a}" >"$OUT/configure.log" 2>&1 &&
     cmake --build "$B" -j "$JOBS" >"$OUT/build.log" 2>&1; then
    say "build: ok ($(elapsed))"
  else
    say "build: FAILED (see configure.log / build.log)"; tail -30 "$OUT/build.log" "$OUT/configure.log" 2>/dev/null
    exit 1
  fi
  mkdir -p "$B/bin"
  for f in "$B"/apps/tailor/tailor "$B"/tests/test_* "$B"/bench/bench_*; do [ -x "$f" ] && ln -sf "$f" "$B/bin/"; done
  BIN=$B/bin
fi

# ---- tests -----------------------------------------------------------------------------------------------------
if [ "$TESTS" = 1 ]; then
  if timeout 600 "$BIN/test_cuda" --gtest_brief=1 >"$OUT/test_cuda.log" 2>&1; then
    say "test_cuda: PASS ($(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' "$OUT/test_cuda.log"), $(grep -c '^\[  SKIPPED' "$OUT/test_cuda.log") skipped lines) ($(elapsed))"
  else
    say "test_cuda: FAIL"; grep -E '^\[  FAILED|Failure|error' "$OUT/test_cuda.log" | head -40 | tee -a "$SUMMARY"
  fi
  for t in "$BIN"/test_*; do
    n=$(basename "$t"); [ "$n" = test_cuda ] && continue
    if (cd "$ROOT" && timeout 300 "$t" --gtest_brief=1 >"$OUT/$n.log" 2>&1); then say "$n: PASS"
    else say "$n: FAIL"; grep -E '^\[  FAILED' "$OUT/$n.log" | head -10 | tee -a "$SUMMARY"; fi
  done
fi

# ---- benchmarks ------------------------------------------------------------------------------------------------
if [ "$BENCH" = 1 ]; then
  [ -x "$BIN/bench_cuda_gemv" ] && timeout 300 "$BIN/bench_cuda_gemv" >"$OUT/gemv.log" 2>&1 && cat "$OUT/gemv.log" | tee -a "$SUMMARY"
  if [ ! -f "$MODEL/config.json" ]; then
    timeout 600 "$BIN/tailor" gen-model --arch qwen2 --preset 7b --dtype bf16 --out "$MODEL" --tokenizer "$TOK" --quiet \
      >"$OUT/gen-model.log" 2>&1 || { say "gen-model: FAILED"; tail -5 "$OUT/gen-model.log"; }
    say "gen-model 7b bf16: $(du -sh "$MODEL" | cut -f1) ($(elapsed))"
  fi
  run_bench() {  # name, args...
    local name=$1; shift
    if timeout 300 "$BIN/tailor" bench "$MODEL" --prompt 512 --gen 128 "$@" --json >"$OUT/bench_$name.json" \
         2>"$OUT/bench_$name.err"; then
      say "bench $name: $(cat "$OUT/bench_$name.json")"
    else
      say "bench $name: FAILED"; tail -5 "$OUT/bench_$name.err" | tee -a "$SUMMARY"
    fi
  }
  export TAILOR_CUDA_TIMING=1; run_bench bf16_b1 --batch 1 --dtype bf16; unset TAILOR_CUDA_TIMING
  grep -h "decode graph" "$OUT/bench_bf16_b1.err" | tee -a "$SUMMARY"
  run_bench bf16_b8 --batch 8 --dtype bf16
  run_bench f16_b1 --batch 1 --dtype f16
  say "benchmarks done ($(elapsed))"
fi

# ---- peers -----------------------------------------------------------------------------------------------------
if [[ ",$PEERS," == *",hf,"* ]]; then
  if [ -f .peers/hf_baseline.py ]; then
    PYTHONUNBUFFERED=1 timeout 420 python3 .peers/hf_baseline.py bw bf16 >"$OUT/hf.jsonl" 2>"$OUT/hf.err"
    say "hf: $(grep -E 'd2d_copy|hf_text|error' "$OUT/hf.jsonl" | tr '\n' ' ')"
  else
    say "hf: .peers/hf_baseline.py missing"
  fi
fi
LB=/tmp/llama.cpp
G=/tmp/qwen25-7b-random
if [[ ",$PEERS," == *",llama,"* || ",$PEERS," == *",server,"* ]]; then
  if [ ! -x $LB/build/bin/llama-bench ] || [ ! -x $LB/build/bin/llama-server ]; then
    rm -rf $LB && git clone -q .peers/gitRelease.bundle $LB >"$OUT/llama-build.log" 2>&1
    (cd $LB && git checkout -q "$(git rev-parse HEAD)" 2>/dev/null;
     cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
       -DGGML_CUDA_NCCL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON >>"$OUT/llama-build.log" 2>&1 &&
     timeout "${LLAMA_BUILD_TIMEOUT:-900}" cmake --build build -j "$JOBS" --target llama-bench llama-server \
       >>"$OUT/llama-build.log" 2>&1) ||
      { say "llama.cpp build FAILED"; tail -20 "$OUT/llama-build.log"; }
    say "llama.cpp built ($(elapsed)), commit $(cd $LB && git rev-parse --short HEAD)"
  fi
  if [ -x $LB/build/bin/llama-bench ] && [ ! -f $G-bf16.gguf ]; then
    PYTHONUNBUFFERED=1 timeout 600 python3 .peers/make_random_qwen2_gguf.py --gguf-py $LB/gguf-py \
      --vocab $LB/models/ggml-vocab-qwen2.gguf --out-bf16 $G-bf16.gguf ${LLAMA_F16:+--out-f16 $G-f16.gguf} \
      >"$OUT/gguf.log" 2>&1 ||
      { say "gguf: FAILED"; tail -5 "$OUT/gguf.log"; }
  fi
fi
if [[ ",$PEERS," == *",llama,"* ]]; then
  for dt in bf16 f16; do
    [ -f $G-$dt.gguf ] || continue
    timeout 300 $LB/build/bin/llama-bench -m $G-$dt.gguf -p 512 -n 128 -ngl 99 -fa 1 -r "${LLAMA_REPS:-5}" -o md \
      >"$OUT/llama_$dt.md" 2>"$OUT/llama_$dt.err"
    say "llama.cpp $dt: $(grep -E 'pp512|tg128' "$OUT/llama_$dt.md" | tr -s ' ' | tr '\n' ' ')"
  done
fi

# ---- server throughput (issue 5): the same requests to tailor's server and to llama-server ---------------------
# bench_server_throughput starts tailor's server in-process, or drives a running one with --url. C clients at
# once, each one /v1/completions request (max_tokens N, ignore_eos); aggregate = C x N / wall time.
llama_server_bench() {  # name, tokens, llama-server args...
  local name=$1 tokens=$2; shift 2
  $LB/build/bin/llama-server --host 127.0.0.1 --port 18200 -np 32 "$@" >"$OUT/llama-server_$name.log" 2>&1 &
  local pid=$! up=0
  for _ in $(seq 240); do
    curl -sf http://127.0.0.1:18200/health >/dev/null 2>&1 && { up=1; break; }
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  if [ $up = 1 ]; then
    timeout 300 "$BIN/bench_server_throughput" --url 127.0.0.1:18200 --concurrency 1,8,32 --tokens "$tokens" \
      >"$OUT/server_llama_$name.md" 2>&1
    say "llama-server $name:"; tee -a "$SUMMARY" <"$OUT/server_llama_$name.md"
  else
    say "llama-server $name: did not come up"; tail -5 "$OUT/llama-server_$name.log" | tee -a "$SUMMARY"
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
}
if [[ ",$PEERS," == *",server,"* ]]; then
  if [ "$TOK" = - ]; then say "server: needs --tokenizer"; else
    M05=/tmp/tailor-0.5b G05=/tmp/qwen25-0.5b-random
    [ -f $M05/config.json ] || timeout 300 "$BIN/tailor" gen-model --arch qwen2 --preset 0.5b --dtype bf16 \
      --out $M05 --tokenizer "$TOK" --quiet >>"$OUT/gen-model.log" 2>&1
    [ -f $G05-bf16.gguf ] || PYTHONUNBUFFERED=1 timeout 300 python3 .peers/make_random_qwen2_gguf.py \
      --gguf-py $LB/gguf-py --vocab $LB/models/ggml-vocab-qwen2.gguf --out-bf16 $G05-bf16.gguf \
      --n-vocab 151936 --n-embd 896 --n-layer 24 --n-head 14 --n-head-kv 2 --n-ff 4864 \
      --name "Qwen2.5-0.5B-shaped random weights" >>"$OUT/gguf.log" 2>&1
    # 7b on the GPU, 64 tokens per request.
    timeout 300 "$BIN/bench_server_throughput" --model "$MODEL" --device cuda --concurrency 1,8,32 --tokens 64 \
      >"$OUT/server_tailor_7b_cuda.md" 2>&1
    say "tailor server 7b cuda:"; tee -a "$SUMMARY" <"$OUT/server_tailor_7b_cuda.md"
    llama_server_bench 7b_cuda 64 -m $G-bf16.gguf -ngl 99 -c 4096
    # 0.5b on the CPU cores of the same machine (GPU hidden), 32 tokens per request.
    CUDA_VISIBLE_DEVICES= timeout 300 "$BIN/bench_server_throughput" --model $M05 --device cpu \
      --threads "$JOBS" --concurrency 1,8,32 --tokens 32 >"$OUT/server_tailor_0.5b_cpu.md" 2>&1
    say "tailor server 0.5b cpu ($JOBS threads):"; tee -a "$SUMMARY" <"$OUT/server_tailor_0.5b_cpu.md"
    CUDA_VISIBLE_DEVICES= llama_server_bench 0.5b_cpu 32 -m $G05-bf16.gguf -ngl 0 -t "$JOBS" -c 3072
  fi
fi
say "total $(elapsed)"
# Only a few files come back from the GPU machine: keep the summary and one archive of every log.
(cd "$OUT" && tar czf logs.tgz --exclude=logs.tgz --exclude=summary.txt ./* 2>/dev/null &&
  find . -maxdepth 1 -type f ! -name logs.tgz ! -name summary.txt -delete)
