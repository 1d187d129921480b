#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU (an H100/H200
# with nvcc 13, the CUDA 13 libraries, PyTorch, transformers): it builds
# nothing, it runs the bundle scripts/gpu-bundle.sh made.
#   1. the kernel test over backends, CUDA required (every op and the sampler
#      against kernels/reference);
#   2. whole models on the GPU against the CPU backend (tiny Qwen2 and Llama,
#      the 1.5B shape; bf16, int8, FP8), and the tiny ones again as Q8_0
#      GGUF files (scripts/gpu-gguf.py);
#   3. the 1.5B shape against Hugging Face transformers on the GPU (same
#      weights, top-5 logprobs);
#   4. bench --offline --device cuda: 1.5B and 7B shapes, bf16/int8/fp8,
#      batch 1, 8, 64, 256 (512-token prompts, 256 new tokens), the copy
#      bandwidth measured in the same run; TTFT of a 128-token prompt on 7B;
#      1.5B int8 prefill both ways (--int8-prefill);
#   5. results.json and table.md under $OUT; the table is printed last.
# Each step has its own time limit so the whole fits about 8 minutes; a
# step that fails or runs out is recorded and the rest go on.
# Usage: scripts/gpu-check.sh BUNDLE_DIR   (OUT defaults to ./gpu-out)
set -uo pipefail
bundle="$(cd "${1:?usage: gpu-check.sh BUNDLE_DIR}" && pwd)"
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
run="$bundle/run.sh"
work="${TMPDIR:-/tmp}/r1serve-gpu-check"
mkdir -p "$work"
status="$out/steps.tsv"
: > "$status"
start=$(date +%s)

step() {  # step NAME LIMIT_S COMMAND...: stdout to NAME.out, stderr to NAME.log
  local name="$1" limit="$2"
  shift 2
  local t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.out" 2> "$out/$name.log"
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$status"
  tail -n 3 "$out/$name.out" "$out/$name.log"
  return 0
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  > "$out/gpu.csv" 2>&1 || true
cat "$out/gpu.csv"

export R1SERVE_REQUIRE_GPU=1
step kernels 120 "$run" backend_ops_test --gtest_output=json:"$out/kernels.json"
R1SERVE_GPU_LARGE=1 step models 200 "$run" gpu_model_test --gtest_output=json:"$out/models.json"
step gguf 90 python3 "$bundle/check/gpu-gguf.py" "$run" "$work" "$out/gguf.json"

m15="$work/qwen2-1.5b"
[ -e "$m15/config.json" ] || "$run" r1serve make-test-model --arch qwen2 --size 1.5b \
  --dtype bf16 --seed 3 --out "$m15" > "$out/make-1.5b.log" 2>&1
step hf_compare 150 python3 "$bundle/check/hf_compare.py" --model "$m15" --run "$run" \
  --out "$out/hf_compare.json"

bench() {  # bench NAME LIMIT MODEL DTYPE BATCHES PROMPT GEN [FLAGS...]: JSON lines in NAME.out
  step "$1" "$2" "$run" r1serve bench --offline --device cuda --model "$3" --dtype "$4" \
    --batch "$5" --prompt-tokens "$6" --gen-tokens "$7" --json "${@:8}"
}
bench bench_1.5b_bf16 90 "$m15" bf16 1,8,64,256 512 256
bench bench_1.5b_int8 60 "$m15" int8 1,8,64,256 512 256
# int8 prefill on int8 tensor cores against the dequantised default (the
# run above): the prefill tok/s of batch 64 decides --int8-prefill.
bench bench_1.5b_int8_gemm 40 "$m15" int8 1,64 512 32 --int8-prefill int8-gemm
bench bench_1.5b_fp8 60 "$m15" fp8 1,8,64,256 512 256

m7="$work/qwen2-7b"
elapsed=$(( $(date +%s) - start ))
if [ "$elapsed" -lt 330 ]; then
  [ -e "$m7/config.json" ] || "$run" r1serve make-test-model --arch qwen2 --size 7b \
    --dtype bf16 --seed 3 --out "$m7" > "$out/make-7b.log" 2>&1
  bench bench_7b_ttft 40 "$m7" bf16 1 128 8
  bench bench_7b_bf16 100 "$m7" bf16 1,8,64,256 512 256
  elapsed=$(( $(date +%s) - start ))
  [ "$elapsed" -lt 420 ] && bench bench_7b_int8 60 "$m7" int8 1,256 512 256
fi

python3 "$bundle/check/gpu-results.py" "$out"
