#!/usr/bin/env bash
# Proves the README is complete: debootstraps a clean Debian 12 (bookworm)
# into a folder, clones the repository into it and runs the README's two
# commands there in a chroot: `make serve` (checked with one chat request,
# then stopped) and `make test`. The same scripts/install-deps.sh that
# deploy/docker/Dockerfile runs installs everything, so the image and this
# test cannot drift apart.
#
# Needs root (debootstrap, chroot, mounts) and access to a Debian mirror and
# PyPI. Slow (tens of minutes): it is the ctest label `fresh`,
# not part of `make test`. Run it with
#   sudo scripts/fresh-machine-test.sh            (or: ctest -L fresh)
# Environment: FRESH_ROOT (default /tmp/r1serve-fresh, removed first),
# DEBIAN_MIRROR (default: the host's first deb.debian.org-style URI, else
# http://deb.debian.org/debian), FRESH_KEEP=1 keeps the folder afterwards.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
root="${FRESH_ROOT:-/tmp/r1serve-fresh}"
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(grep -hoE '^URIs: *http[^ ]*/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    head -1 | sed 's/^URIs: *//')" || true
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
[[ $(id -u) -eq 0 ]] || { echo "fresh-machine-test: needs root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh-machine-test: needs debootstrap" >&2; exit 2; }

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [[ "${FRESH_KEEP:-0}" != "1" ]]; then rm -rf "$root"; fi
}
trap cleanup EXIT

step() { echo "== fresh-machine-test: $* ($(date -u +%H:%M:%S))"; }

rm -rf "$root"
step "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase --include=ca-certificates,make,sudo,curl,git \
  bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log"; exit 1; }
rm -f "$root.debootstrap.log"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's local trust settings, for networks that inspect TLS: its extra
# CA certificates and a global pip.conf (e.g. pip pointed at the system
# bundle or at a PyPI mirror).
# A fresh machine on such a network is set up the same way by its owner.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
# No services start inside the chroot (packages such as redis-server and
# prometheus would otherwise try).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

for m in proc sys dev dev/pts; do
  mkdir -p "$root/$m"
  case $m in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sys "$root/sys" ;;
    *) mount --bind "/$m" "$root/$m" ;;
  esac
  mounts+=("$root/$m")
done
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"

step "clone the repository (what CI checks out)"
git clone -q --no-hardlinks "$src" "$root/root/r1serve"

step "README command 1: make serve"
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 /bin/bash -euo pipefail -c '
cd /root/r1serve
# Its own process group, so stopping it stops make and the server only.
setsid make serve >/tmp/serve.log 2>&1 &
pid=$!
for i in $(seq 1 3600); do
  curl -sf http://127.0.0.1:8000/ready >/dev/null && break
  kill -0 $pid 2>/dev/null || { tail -40 /tmp/serve.log; exit 1; }
  sleep 1
done
curl -sf http://127.0.0.1:8000/v1/chat/completions -H "Content-Type: application/json" \
  -d "{\"model\":\"SmolLM2-135M-Instruct.Q4_1\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":8}" |
  tee /tmp/answer.json | grep -q "\"chat.completion\"" || { cat /tmp/answer.json; tail -20 /tmp/serve.log; exit 1; }
kill -TERM -- -$pid
wait $pid || true
echo "make serve: answered a chat completion"
'

step "README command 2: make test"
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 /bin/bash -euo pipefail -c 'cd /root/r1serve && make test'
step "passed"
