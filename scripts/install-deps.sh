#!/usr/bin/env bash
# Installs what building and testing r1serve needs and is not yet present:
# Debian 12 packages through apt-get, and the Python test tooling pinned with
# hashes in tools/python/requirements.txt, in the project-local virtual
# environment .venv. Idempotent; prints nothing when everything is in place.
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
            libhiredis0.14 libyaml-cpp0.7 libsqlite3-0 libstdc++6 zlib1g libbrotli1 curl
            ca-certificates)
else
  # Build and run time.
  packages=(
    build-essential cmake ninja-build pkg-config git
    nlohmann-json3-dev libpcre2-dev libcli11-dev libicu-dev
    libcpp-httplib-dev prometheus-cpp-dev libssl-dev libyaml-cpp-dev libhiredis-dev libsqlite3-dev
    libgtest-dev libgmock-dev libbenchmark-dev
  )
fi
# Test oracles and tooling: the PyTorch reference forward (Debian's torch,
# run by /usr/bin/python3), Python's venv for .venv, the fuzzing toolchain of
# the asan preset, Redis for the response-cache tests, Prometheus and kubectl
# for the deployment tests, debootstrap for the fresh-machine test, iproute2's
# ss for the listen-backlog check, ccache so that CI's cuda preset reuses the
# release preset's objects (CMakeLists.txt).
if [[ "$mode" == full ]]; then
  packages+=(python3 python3-venv python3-torch python3-numpy python3-yaml clang ccache
             libclang-rt-14-dev clang-format redis-server prometheus debootstrap iproute2)
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
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
  # The Python test tooling, from PyPI with every file's hash checked, into
  # .venv (Debian's python3, no system site packages). Reinstalled only when
  # requirements.txt changed since the last install.
  req=tools/python/requirements.txt
  stamp=.venv/.r1serve-requirements.sha256
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ ! -x .venv/bin/python || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "install-deps: installing the Python test tooling from $req into .venv"
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
      --require-hashes --no-deps -r "$req"
    echo "$want" >"$stamp"
  fi
fi
