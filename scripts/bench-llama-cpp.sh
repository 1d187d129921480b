#!/usr/bin/env bash
# r1serve against llama.cpp on the same GGUF file and machine, in one run:
# prefill (pp512), decode (tg128: 128 tokens from an empty context), and
# perplexity on a short text. llama.cpp is built from the source that PyPI's
# llama-cpp-python 0.3.36 ships (scripts/fetch-model.sh --llama-cpp), CPU
# only, -DGGML_NATIVE=ON, into the model cache.
#
#   scripts/bench-llama-cpp.sh [MODEL.gguf] [THREADS]
#   scripts/bench-llama-cpp.sh --prefill-pairs [ROUNDS] [THREADS]
#
# --prefill-pairs: pp512 of the R1-Distill-Qwen-1.5B shape (random
# weights, `make-test-model --size 1.5b`) written as Q8_0, Q4_0 and F16 GGUF
# files by tools/reference/hf_to_gguf.py (llama.cpp's gguf-py), each against
# r1serve's counterpart on the same file (int8 in groups of 32, int4, bf16),
# the two in turn for ROUNDS rounds (default 3); prints every run and the
# median ratio per pair (the lower middle one for an even ROUNDS). The
# files (about 6.5 GB) are made once into the model cache.
#
# Prints one block per implementation and dtype; docs/PERFORMANCE.md records
# the results. Not a test: timings belong to the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=0
if [[ "${1:-}" == "--prefill-pairs" ]]; then
  pairs=1
  rounds="${2:-3}"
  threads="${3:-$(nproc)}"
  if ! [[ "$rounds" =~ ^[1-9][0-9]*$ && "$threads" =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-llama-cpp: ROUNDS and THREADS must be positive whole numbers" >&2
    exit 2
  fi
else
  model="${1:-$(scripts/fetch-model.sh --llama-cpp)}"
  threads="${2:-$(nproc)}"
fi
scripts/fetch-model.sh --llama-cpp >/dev/null
cache="${R1SERVE_MODEL_CACHE:-$HOME/.cache/r1serve/models}"
src="$cache/llama.cpp-src"
if [[ ! -x "$src/build/bin/llama-bench" ]]; then
  rm -rf "$src"
  mkdir -p "$src"
  tar -xzf "$cache/llama_cpp_python-0.3.36.tar.gz" -C "$src" --strip-components=3 \
    llama_cpp_python-0.3.36/vendor/llama.cpp
  cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$src/build" -j "$(nproc)" --target llama-bench llama-perplexity
fi
bin="$src/build/bin"
r1=build/release/r1serve

if [[ $pairs == 1 ]]; then
  shape="$cache/r1-1.5b-shape"
  if [[ ! -f "$shape/ok" ]]; then
    rm -rf "$shape"
    "$r1" make-test-model --arch qwen2 --size 1.5b --dtype f32 --seed 1 --out "$shape/hf" >&2
    for type in Q8_0 Q4_0 F16; do
      .venv/bin/python tools/reference/hf_to_gguf.py "$shape/hf" "$shape/$type.gguf" --type "$type"
    done
    rm -rf "$shape/hf"
    touch "$shape/ok"
  fi
  echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "== R1-Distill-Qwen-1.5B shape, pp512, threads: $threads, commit $(git rev-parse --short HEAD)"
  for pair in Q8_0:int8/32 Q4_0:int4 F16:bf16; do
    type="${pair%%:*}" ours="${pair#*:}"
    dtype_arg=()
    [[ "$ours" != int8/32 ]] && dtype_arg=(--dtype "$ours")
    ratios=()
    for ((round = 1; round <= rounds; round++)); do
      theirs=$("$bin/llama-bench" -m "$shape/$type.gguf" -t "$threads" -p 512 -n 0 -r 1 -o json \
        2>/dev/null | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[0]["avg_ts"])')
      mine=$("$r1" bench --offline --model "$shape/$type.gguf" "${dtype_arg[@]}" --threads \
        "$threads" --prompt-tokens 512 --gen-tokens 1 2>/dev/null |
        awk '/^prefill_tokens_per_second:/ {print $2}')
      if [[ -z "$theirs" || -z "$mine" ]]; then
        echo "bench-llama-cpp: a pp512 run on $type.gguf printed no rate" >&2
        exit 1
      fi
      ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN {printf "%.2f", a / b}')
      ratios+=("$ratio")
      printf '%s vs r1serve %s, round %d: llama.cpp %.1f tok/s, r1serve %.1f tok/s, ratio %s\n' \
        "$type" "$ours" "$round" "$theirs" "$mine" "$ratio"
    done
    median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    echo "== $type vs r1serve $ours: median ratio $median"
  done
  exit 0
fi

text="$(mktemp)"
trap 'rm -f "$text"' EXIT
# The text both perplexities read: the README and docs/ARCHITECTURE.md,
# plain English with code identifiers (about 6k tokens).
cat README.md docs/ARCHITECTURE.md >"$text"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== model: $model, threads: $threads, commit $(git rev-parse --short HEAD)"
echo "== llama.cpp (llama-bench -p 512 -n 128 -r 5)"
"$bin/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -r 5 2>/dev/null
for dtype in "" int4 f32; do
  echo "== r1serve, --dtype ${dtype:-(default: int8 in groups of 32)}"
  # prefill: one 512-token prompt; decode: 128 tokens after a 1-token prompt
  # (tg128's empty context)
  "$r1" bench --offline --model "$model" ${dtype:+--dtype $dtype} --threads "$threads" \
    --prompt-tokens 512 --gen-tokens 1 2>/dev/null | grep -E '^prefill_tokens_per_second'
  "$r1" bench --offline --model "$model" ${dtype:+--dtype $dtype} --threads "$threads" \
    --prompt-tokens 1 --gen-tokens 128 2>/dev/null |
    grep -E '^(decode_tokens_per_second|weight_bytes_per_token|decode_fraction_of_bound):'
done
echo "== perplexity, windows of 256 tokens, the second half of each scored (llama.cpp's way)"
echo "-- llama.cpp"
"$bin/llama-perplexity" -m "$model" -t "$threads" -f "$text" -c 256 -b 256 2>&1 |
  grep -E 'Final estimate' || true
for dtype in f32 "" int4; do
  echo "-- r1serve --dtype ${dtype:-(default)}"
  "$r1" perplexity --model "$model" ${dtype:+--dtype $dtype} --threads "$threads" --file "$text" \
    --ctx 256 --second-half 2>/dev/null | grep -E '^(perplexity|tokens_scored):'
done
