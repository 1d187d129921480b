#include "core/cpu_features.h"

#include <cpuid.h>

namespace r1 {

namespace {
CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.fma = (c & (1u << 12)) != 0;
    f.f16c = (c & (1u << 29)) != 0;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = (b & (1u << 5)) != 0;
    f.avx512f = (b & (1u << 16)) != 0;
    f.avx512bw = (b & (1u << 30)) != 0;
    f.avx512vl = (b & (1u << 31)) != 0;
    f.avx512vnni = (c & (1u << 11)) != 0;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = (a & (1u << 5)) != 0;
  // The OS must save the wider registers too (XCR0: SSE, AVX, and the
  // AVX-512 state), or the instructions fault.
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27)) != 0) {
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  }
  const bool avx_state = (xcr0_lo & 0x6u) == 0x6u;
  const bool avx512_state = (xcr0_lo & 0xe6u) == 0xe6u;
  f.avx2 = f.avx2 && avx_state;
  f.fma = f.fma && avx_state;
  f.f16c = f.f16c && avx_state;
  f.avx512f = f.avx512f && avx512_state;
  f.avx512bw = f.avx512bw && f.avx512f;
  f.avx512vl = f.avx512vl && f.avx512f;
  f.avx512vnni = f.avx512vnni && f.avx512f;
  f.avx512bf16 = f.avx512bf16 && f.avx512f;
  return f;
}
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace r1
