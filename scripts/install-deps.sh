#!/usr/bin/env bash
# Installs what building and testing r1serve needs and is not yet present:
# Debian 12 packages through apt-get, and the npm test tooling pinned by
# package-lock.json. Idempotent; prints nothing when everything is in place.
# Used by `make`, CI and the container images alike.
set -euo pipefail

cd "$(dirname "$0")/.."

# What to install: full (default: build, test and tooling), build (what
# compiling needs; R1SERVE_RUNTIME_ONLY=1 means this too, for older callers)
# or runtime (the shared libraries the r1serve binary loads, and curl for a
# container's HEALTHCHECK: the runtime stage of deploy/docker/Dockerfile).
mode="${R1SERVE_DEPS:-full}"
[[ "${R1SERVE_RUNTIME_ONLY:-0}" == "1" ]] && mode=build

if [[ "$mode" == runtime ]]; then
  packages=(libpcre2-8-0 libicu72 libprometheus-cpp-core1.0 libcpp-httplib0.11 libssl3
            libhiredis0.14 libyaml-cpp0.7 libstdc++6 zlib1g libbrotli1 curl ca-certificates)
else
  # Build and run time.
  packages=(
    build-essential cmake ninja-build pkg-config git
    nlohmann-json3-dev libpcre2-dev libcli11-dev libicu-dev
    libcpp-httplib-dev prometheus-cpp-dev libssl-dev libyaml-cpp-dev libhiredis-dev
    libgtest-dev libgmock-dev libbenchmark-dev
  )
fi
# Test oracles and tooling: the PyTorch reference forward, the JS tokenizer
# and template engine, the fuzzing toolchain of the asan preset, Redis for
# the response-cache tests, Prometheus and kubectl for the deployment tests,
# debootstrap for the fresh-machine test.
if [[ "$mode" == full ]]; then
  packages+=(python3 python3-torch python3-numpy python3-yaml nodejs clang libclang-rt-14-dev
             clang-format redis-server prometheus debootstrap)
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # nodejs may come from another source than Debian; accept a working binary.
    if [[ "$p" == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "$mode" == full ]]; then
  # npm ci only when the lock file changed since the last install.
  stamp=node_modules/.r1serve-lock.sha256
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "install-deps: installing npm test tooling from package-lock.json"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    echo "$want" >"$stamp"
  fi
fi
