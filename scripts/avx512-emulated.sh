#!/usr/bin/env bash
# Runs a statically linked x86-64 Linux program on an emulated AVX-512 CPU,
# so the AVX-512 kernels and their tests run on machines without AVX-512
# (QEMU 7.2 TCG has none; Bochs 2.7 emulates AVX512F/BW/VL/DQ and VNNI, but
# not AVX512_BF16).
#
#   scripts/avx512-emulated.sh BINARY [ARGS...]
#   scripts/avx512-emulated.sh --selftest [--inject-mismatch] [--spin[-zmm] N]
#
# BINARY must be static: `-static`, and for gtest
#   g++ -static -pthread ... /usr/lib/x86_64-linux-gnu/libgtest.a \
#       /usr/lib/x86_64-linux-gnu/libgtest_main.a
# It runs as the only program of a minimal Linux, with /proc, /sys and a
# tmpfs /tmp as its working directory, and no other files; its environment
# is PATH, HOME, TERM=dumb and the caller's exported R1SERVE_* (not
# R1SERVE_EMU_*) and GTEST_* variables. Its stdout and
# stderr come back through the emulated serial port and are printed here as
# they arrive. The script exits with the program's exit status (128 + the
# signal if it was killed), 124 on timeout, 125 when the guest did not boot
# or Bochs failed. --selftest compiles and runs
# scripts/avx512-emulated-selftest.c (VPDPBUSD, FMA, masked loads and
# reductions against scalar code; --inject-mismatch must make it exit 1).
#
# How: Debian 12's Bochs (`cpu: model=tigerlake`) boots a tiny kernel built
# once from Debian's linux-source with scripts/avx512-emulated-kernel.config
# (or, with R1SERVE_EMU_KERNEL=debian, linux-image-amd64's kernel: no build,
# but 140 s instead of 3 s to boot, most of it unpacking the xz kernel) from
# an isolinux ISO. /init is scripts/avx512-emulated-init.c: it runs the
# program, prints `R1SERVE-EMULATED-EXIT <status>` and powers off; this
# script stops Bochs at that line. Kernel and init are cached in
# build/emu-cache. Missing Debian packages are installed with apt-get.
#
# Cost, on a Zen 3 host: boot to /init about 3.5 s (the first run also
# builds the kernel: about 4 minutes). Then scalar code runs at about 50
# million instructions per second (~80 times slower than native) and 512-bit
# instructions at about 9 million per second (VPDPBUSD or VFMADD231PS ~110 ns
# each): a test doing 1e8 zmm operations takes ~12 s. Size gtest shapes for
# that; small odd shapes catch tail bugs just as well as large ones. Times
# the program measures are guest time, about 50 times shorter than the wall
# (the guest's TSC counts instructions). The 40 tests of kernels_test_static
# take 17 s.
#
# Environment:
#   R1SERVE_EMU_TIMEOUT  seconds for boot plus run before giving up (1800)
#   R1SERVE_EMU_BOOT_TIMEOUT  seconds to reach /init (tiny 120, debian 600)
#   R1SERVE_EMU_MEGS     guest memory in MiB (1024)
#   R1SERVE_EMU_KERNEL   tiny (default) or debian
#   R1SERVE_EMU_CACHE    cache folder (build/emu-cache)
#   R1SERVE_EMU_VERBOSE  1: also print the kernel's messages
#   R1SERVE_EMU_KEEP     1: keep the run folder (bochsrc, ISO, logs)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
timeout_s="${R1SERVE_EMU_TIMEOUT:-1800}"
megs="${R1SERVE_EMU_MEGS:-1024}"
kernel_kind="${R1SERVE_EMU_KERNEL:-tiny}"
boot_timeout_s="${R1SERVE_EMU_BOOT_TIMEOUT:-$([[ "$kernel_kind" == debian ]] && echo 600 || echo 120)}"
((boot_timeout_s <= timeout_s)) || boot_timeout_s=$timeout_s
cache="${R1SERVE_EMU_CACHE:-$repo/build/emu-cache}"
verbose="${R1SERVE_EMU_VERBOSE:-0}"
keep="${R1SERVE_EMU_KEEP:-0}"

die() {
  echo "avx512-emulated: $*" >&2
  exit 125
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
[[ "$1" == -h || "$1" == --help ]] && usage
[[ "$kernel_kind" == tiny || "$kernel_kind" == debian ]] ||
  die "R1SERVE_EMU_KERNEL=$kernel_kind: tiny or debian"

# --- Debian packages -------------------------------------------------------
packages=(bochs bochsbios vgabios bochs-term isolinux syslinux-common xorriso cpio
  gcc libc6-dev)
[[ "$kernel_kind" == tiny ]] && packages+=(linux-source make flex bison bc libelf-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "avx512-emulated: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- The program to run ----------------------------------------------------
mkdir -p "$cache"
if [[ "$1" == --selftest ]]; then
  shift
  selftest="$cache/avx512-emulated-selftest"
  src="$repo/scripts/avx512-emulated-selftest.c"
  if [[ ! -x "$selftest" || "$src" -nt "$selftest" ]]; then
    gcc -static -O2 -Wall -mavx512f -mavx512bw -mavx512vl -mavx512vnni \
      -o "$selftest" "$src" || die "cannot compile $src"
  fi
  set -- "$selftest" "$@"
fi
binary="$1"
shift
[[ -f "$binary" && -x "$binary" ]] || die "$binary: not an executable file"
# A dynamic binary would fail inside with a bare "No such file" from exec.
if command -v file >/dev/null && file -b "$binary" | grep -q 'dynamically linked'; then
  die "$binary is dynamically linked; link it with -static"
fi
for a in "$@"; do
  [[ "$a" != *$'\n'* ]] || die "arguments cannot contain a newline"
done

# --- Cached pieces: kernel and /init (one builder at a time) ---------------
exec 9>"$cache/.lock"
flock 9

build_tiny_kernel() {
  local dir="$cache/kernel-tiny" tarball fragment="$repo/scripts/avx512-emulated-kernel.config"
  tarball=$(find /usr/src -maxdepth 1 -name 'linux-source-*.tar.xz' | sort -V | tail -1)
  [[ -n "$tarball" ]] || die "no /usr/src/linux-source-*.tar.xz (package linux-source)"
  local want
  want="$(basename "$tarball") $(sha256sum "$fragment" | cut -d' ' -f1)"
  kernel="$dir/bzImage"
  [[ -f "$kernel" && "$(cat "$dir/stamp" 2>/dev/null)" == "$want" ]] && return
  echo "avx512-emulated: building the guest kernel from $(basename "$tarball")" \
    "(once; about 4 minutes on 2 cores)" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  local top
  top=$(basename "$tarball" .tar.xz)  # the archive's top folder
  # Documentation/ is 60 MB of text; Kconfig needs only its Kconfig file.
  if ! tar -xJf "$tarball" -C "$dir" --exclude="$top/Documentation" "$top" ||
    ! tar -xJf "$tarball" -C "$dir" "$top/Documentation/Kconfig"; then
    die "cannot unpack $tarball"
  fi
  local src="$dir/$top"
  if ! (cd "$src" && make -s tinyconfig &&
    scripts/kconfig/merge_config.sh -m .config "$fragment" &&
    make -s olddefconfig && make -s -j "$(nproc)" bzImage) >"$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log" >&2
    die "the guest kernel did not build (log: $dir/build.log)"
  fi
  cp "$src/arch/x86/boot/bzImage" "$kernel"
  cp "$src/.config" "$dir/config"
  rm -rf "$src"  # 1.4 GB; a rebuild unpacks it again
  echo "$want" >"$dir/stamp"
}

fetch_debian_kernel() {
  local dir="$cache/kernel-debian"
  kernel="$dir/vmlinuz"
  [[ -f "$kernel" ]] && return
  # linux-image-amd64 is a metapackage; its dependency is the real image.
  local image
  image=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [[ -n "$image" ]] || die "cannot resolve linux-image-amd64 (apt-get update?)"
  echo "avx512-emulated: fetching $image (once)" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && apt-get download -q "$image" >/dev/null 2>&1) || die "apt-get download $image failed"
  dpkg-deb --fsys-tarfile "$dir"/*.deb | tar -x -C "$dir" --wildcards './boot/vmlinuz-*'
  mv "$dir"/boot/vmlinuz-* "$kernel"
  rm -rf "${dir:?}/boot" "$dir"/*.deb
}

if [[ "$kernel_kind" == tiny ]]; then build_tiny_kernel; else fetch_debian_kernel; fi

init="$cache/avx512-emulated-init"
init_src="$repo/scripts/avx512-emulated-init.c"
if [[ ! -x "$init" || "$init_src" -nt "$init" ]]; then
  gcc -static -O2 -Wall -o "$init" "$init_src" || die "cannot compile $init_src"
fi
flock -u 9

# --- This run's initramfs, ISO and Bochs configuration ---------------------
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/avx512-emulated.XXXXXX")
bochs_pid=""
watchdog_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [[ -n "$watchdog_pid" ]]; then kill "$watchdog_pid" 2>/dev/null || true; fi
  if [[ -n "$bochs_pid" ]]; then kill -9 "$bochs_pid" 2>/dev/null || true; fi
  if [[ "$keep" == 1 ]]; then
    echo "avx512-emulated: kept $run_dir" >&2
  else
    rm -rf "$run_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

root="$run_dir/root"
iso="$run_dir/iso"
mkdir -p "$root/dev" "$iso/isolinux"
cp "$init" "$root/init"
cp "$binary" "$root/r1serve-test"
chmod 755 "$root/init" "$root/r1serve-test"
: >"$root/r1serve-args"
for a in "$@"; do printf '%s\n' "$a" >>"$root/r1serve-args"; done
: >"$root/r1serve-env"
for name in $(compgen -e); do
  [[ "$name" =~ ^(R1SERVE_|GTEST_) && "$name" != R1SERVE_EMU_* ]] || continue
  [[ "${!name}" != *$'\n'* ]] || die "$name contains a newline"
  printf '%s=%s\n' "$name" "${!name}" >>"$root/r1serve-env"
done
# Lets the kernel open a console before /init mounts devtmpfs (root only;
# /init copes without it).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
# Uncompressed: unpacking in the guest would cost more than the BIOS reads.
(cd "$root" && find . -mindepth 1 | cpio -o -H newc --quiet) >"$iso/initrd"

cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$kernel" "$iso/vmlinuz"
# quiet: the emulated serial port is slow. clearcpuid works around two Bochs
# 2.7 bugs that otherwise stop the guest kernel:
#  - pku, xsaves, xsavec: CPUID leaf 0xD lists PKRU in XCR0 but not its
#    size (sub-leaf 9 is compiled out by a typo), and gives standard-format
#    sizes for the compacted format; Linux then turns XSAVE, and with it AVX
#    and AVX-512, off ("XSAVE consistency problem").
#  - erms, fsrm: with them the kernel's memcpy/memmove use REP MOVSB, and
#    the Debian kernel corrupts its own text just after "LSM: Security
#    Framework initializing" (an endless exception loop).
# This only changes what the guest kernel uses: CPUID as the program sees it
# is the tigerlake model's (the selftest checks glibc's string functions).
cmdline="console=ttyS0 quiet loglevel=3 panic=-1 clearcpuid=pku,xsaves,xsavec,erms,fsrm"
cmdline+=" nokaslr mitigations=off lpj=10000000 tsc=reliable no_timer_check nmi_watchdog=0"
[[ "$verbose" == 1 ]] && cmdline="${cmdline/quiet loglevel=3/loglevel=7}"
cat >"$iso/isolinux/isolinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd $cmdline
EOF
xorriso -as mkisofs -quiet -o "$run_dir/boot.iso" \
  -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2>"$run_dir/xorriso.log" ||
  die "xorriso failed: $(cat "$run_dir/xorriso.log")"

serial="$run_dir/serial.out"
: >"$serial"
# Debian's Bochs has no `nogui` display and is built with its debugger,
# which stops before the first instruction: `term` draws on a pty of its own
# (it needs TERM set), and the debugger script continues, then quits.
# clock sync=none: guest time follows the instruction count (the guest's TSC
# counts instructions, so its clock runs far slower than the wall).
cat >"$run_dir/bochsrc" <<EOF
config_interface: textconfig
display_library: term
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=tigerlake, count=1, ips=50000000, reset_on_triple_fault=0, ignore_bad_msrs=1
memory: guest=$megs, host=$megs
pci: enabled=1, chipset=i440fx
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path="$run_dir/boot.iso", status=inserted
boot: cdrom
floppy_bootsig_check: disabled=1
clock: sync=none, time0=utc
com1: enabled=1, mode=file, dev="$serial"
log: $run_dir/bochs.log
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
mouse: enabled=0
sound: driver=dummy
speaker: enabled=0
EOF
printf 'c\nquit\n' >"$run_dir/debugger.rc"

# --- Run -------------------------------------------------------------------
now() { date +%s.%N; }
seconds_since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

start=$(now)
TERM=vt100 bochs-bin -q -f "$run_dir/bochsrc" -rc "$run_dir/debugger.rc" \
  </dev/null >"$run_dir/bochs.stdout" 2>&1 &
bochs_pid=$!
disown "$bochs_pid"  # no "Killed" job notice when it is stopped
# Bochs ignores SIGTERM (its debugger catches it): only SIGKILL stops it.
watchdog() {
  local sleep_pid=""
  trap 'kill $sleep_pid 2>/dev/null; exit 0' TERM
  sleep "$boot_timeout_s" &
  sleep_pid=$!
  wait "$sleep_pid"
  if [[ ! -f "$run_dir/booted" ]]; then
    echo boot >"$run_dir/timed-out"
  else
    sleep "$((timeout_s - boot_timeout_s))" &
    sleep_pid=$!
    wait "$sleep_pid"
    echo run >"$run_dir/timed-out"
  fi
  kill -9 "$bochs_pid" 2>/dev/null
}
watchdog &
watchdog_pid=$!
disown "$watchdog_pid"

# Prints the program's output as it arrives (the kernel's only when
# verbose) and stops at the exit marker or a kernel panic. A shell loop, as
# mawk would hold lines back until its input buffer fills.
outcome=""
booted=""
boot_log=()
while IFS= read -r line; do
  line=${line%$'\r'}
  if [[ -z "$booted" ]]; then
    if [[ "$line" == R1SERVE-EMULATED-INIT* ]]; then
      booted=$(now)
      : >"$run_dir/booted"
      echo "avx512-emulated: booted in $(seconds_since "$start") s" >&2
      continue
    fi
    [[ "$verbose" == 1 ]] && printf '%s\n' "$line"
    boot_log+=("$line")
    if [[ "$line" == *"Kernel panic"* ]]; then
      outcome=panic
      break
    fi
    continue
  fi
  if [[ "$line" =~ ^R1SERVE-EMULATED-EXIT\ (-?[0-9]+)$ ]]; then
    outcome="exit ${BASH_REMATCH[1]}"
    echo "avx512-emulated: the program ran $(seconds_since "$booted") s" >&2
    break
  fi
  printf '%s\n' "$line"
done < <(tail -n +1 -F --pid="$bochs_pid" "$serial" 2>/dev/null)
kill -9 "$bochs_pid" 2>/dev/null || true

if [[ "$outcome" == exit* ]]; then
  status=${outcome#exit }
  ((status > 128)) && echo "avx512-emulated: the program was killed by signal $((status - 128))" >&2
  exit "$status"
fi
if [[ -z "$booted" && "$verbose" != 1 && ${#boot_log[@]} -gt 0 ]]; then
  echo "avx512-emulated: the guest kernel's last messages:" >&2
  first=$((${#boot_log[@]} > 40 ? ${#boot_log[@]} - 40 : 0))
  printf '%s\n' "${boot_log[@]:first}" >&2
fi
case "$(cat "$run_dir/timed-out" 2>/dev/null)" in
  boot) die "the guest did not reach /init in $boot_timeout_s s (R1SERVE_EMU_BOOT_TIMEOUT;" \
    "R1SERVE_EMU_VERBOSE=1 shows the kernel's messages)" ;;
  run)
    echo "avx512-emulated: timed out after $timeout_s s (R1SERVE_EMU_TIMEOUT)" >&2
    exit 124
    ;;
esac
[[ "$outcome" == panic ]] && die "the guest kernel panicked (R1SERVE_EMU_VERBOSE=1 shows its log)"
grep -v 'MSR: Unknown register' "$run_dir/bochs.log" 2>/dev/null | tail -n 15 >&2 || true
die "Bochs stopped after $(seconds_since "$start") s before the program finished"
