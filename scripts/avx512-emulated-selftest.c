// Self-check of scripts/avx512-emulated.sh: runs the AVX-512 instructions our
// kernels use on known inputs and compares each with plain scalar code.
// Exit 0: all match; 1: a mismatch; 2: the CPU lacks a required feature.
//
//   avx512-emulated-selftest                    the checks
//   avx512-emulated-selftest --inject-mismatch  corrupts one reference value;
//                                               must exit 1 (tests the harness)
//   avx512-emulated-selftest --spin N           then N million iterations of
//                                               4 scalar instructions
//   avx512-emulated-selftest --spin-zmm N       or of 2 zmm + 2 scalar ones
//
// Built by the script: gcc -static -O2 -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni. Inputs are small integers or multiples of 1/8, so every float
// result here is exact and compared with ==.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int n_failed = 0;

static void check(const char* what, int ok) {
  printf("%-44s %s\n", what, ok ? "ok" : "MISMATCH");
  if (!ok) n_failed++;
}

// Deterministic inputs (xorshift32), never all zeros.
static uint32_t rng_state = 0x9e3779b9u;
static uint32_t next_u32(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

// VPDPBUSD: acc[i] += sum_{k<4} u8 a[4i+k] * s8 b[4i+k], 512- and 256-bit.
static void check_dpbusd(int inject) {
  uint8_t a[64];
  int8_t b[64];
  int32_t acc[16], got[16], want[16];
  for (int i = 0; i < 64; i++) {
    a[i] = (uint8_t)next_u32();
    b[i] = (int8_t)next_u32();
  }
  a[0] = 255;  // extremes: the products saturate nothing, but sign matters
  b[0] = -128;
  a[1] = 255;
  b[1] = 127;
  for (int i = 0; i < 16; i++) acc[i] = (int32_t)(next_u32() % 200001) - 100000;
  for (int i = 0; i < 16; i++) {
    want[i] = acc[i];
    for (int k = 0; k < 4; k++) want[i] += (int32_t)a[4 * i + k] * (int32_t)b[4 * i + k];
  }
  if (inject) want[5] += 1;

  __m512i r =
      _mm512_dpbusd_epi32(_mm512_loadu_si512(acc), _mm512_loadu_si512(a), _mm512_loadu_si512(b));
  _mm512_storeu_si512(got, r);
  check("_mm512_dpbusd_epi32 (AVX512_VNNI)", memcmp(got, want, sizeof got) == 0);

  __m256i r256 = _mm256_dpbusd_epi32(_mm256_loadu_si256((const __m256i*)acc),
                                     _mm256_loadu_si256((const __m256i*)a),
                                     _mm256_loadu_si256((const __m256i*)b));
  _mm256_storeu_si256((__m256i*)got, r256);
  check("_mm256_dpbusd_epi32 (AVX512_VNNI + VL)", memcmp(got, want, 8 * sizeof got[0]) == 0);
}

// VFMADD: a * b + c, exact for these inputs.
static void check_fmadd(void) {
  float a[16], b[16], c[16], got[16], want[16];
  for (int i = 0; i < 16; i++) {
    a[i] = (float)((int)(next_u32() % 257) - 128) / 8.0f;
    b[i] = (float)((int)(next_u32() % 257) - 128) / 8.0f;
    c[i] = (float)((int)(next_u32() % 2001) - 1000) / 8.0f;
    want[i] = (float)((double)a[i] * b[i] + c[i]);
  }
  _mm512_storeu_ps(got,
                   _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b), _mm512_loadu_ps(c)));
  check("_mm512_fmadd_ps", memcmp(got, want, sizeof got) == 0);
}

// Masked loads of a tail that ends exactly at an inaccessible page: the
// masked-off lanes must neither fault nor be read; then horizontal sums.
static void check_masked_tail(void) {
  long page = sysconf(_SC_PAGESIZE);
  char* mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED || mprotect(mem + page, page, PROT_NONE) != 0) {
    perror("mmap/mprotect");
    exit(1);
  }
  enum { kTail = 13, kTailBytes = 37 };
  float* xs = (float*)(mem + page) - kTail;  // last float ends at the guard page
  float want_sum = 0;
  for (int i = 0; i < kTail; i++) {
    xs[i] = (float)((int)(next_u32() % 801) - 400) / 8.0f;
    want_sum += xs[i];
  }
  __mmask16 m16 = (__mmask16)((1u << kTail) - 1);
  __m512 v = _mm512_maskz_loadu_ps(m16, xs);
  float lanes[16];
  _mm512_storeu_ps(lanes, v);
  int lanes_ok = 1;
  for (int i = 0; i < 16; i++) lanes_ok &= lanes[i] == (i < kTail ? xs[i] : 0.0f);
  check("_mm512_maskz_loadu_ps, 13 of 16 at a guard page", lanes_ok);
  check("_mm512_reduce_add_ps", _mm512_reduce_add_ps(v) == want_sum);
  check("_mm512_mask_reduce_add_ps",
        _mm512_mask_reduce_add_ps(m16, _mm512_loadu_ps(lanes)) == want_sum);

  uint8_t* bytes = (uint8_t*)(mem + page) - kTailBytes;
  int32_t want_bytes = 0;
  for (int i = 0; i < kTailBytes; i++) {
    bytes[i] = (uint8_t)next_u32();
    want_bytes += bytes[i];
  }
  __mmask64 m64 = ((__mmask64)1 << kTailBytes) - 1;
  __m512i vb = _mm512_maskz_loadu_epi8(m64, bytes);  // AVX512BW
  // Widen u8 -> i32 by summing against ones with VPDPBUSD.
  __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, _mm512_set1_epi8(1));
  check("_mm512_maskz_loadu_epi8 (BW), 37 bytes + sum",
        _mm512_reduce_add_epi32(sums) == want_bytes);

  int32_t* ints = (int32_t*)(mem + page) - 5;
  int32_t want_ints = 0;
  for (int i = 0; i < 5; i++) want_ints += ints[i] = (int32_t)(next_u32() % 1000) - 500;
  __m256i vi = _mm256_maskz_loadu_epi32(0x1f, ints);  // AVX512VL
  int32_t li[8];
  _mm256_storeu_si256((__m256i*)li, vi);
  int32_t got_ints = 0;
  for (int i = 0; i < 8; i++) got_ints += li[i];
  check("_mm256_maskz_loadu_epi32 (VL), 5 of 8", got_ints == want_ints && li[5] == 0);
  munmap(mem, 2 * page);
}

// glibc's memcpy/memmove/memset pick REP MOVSB/STOSB and AVX-512 variants
// from CPUID, which in the guest still reports ERMS and FSRM (the guest
// kernel only hides them from itself, see avx512-emulated.sh): check them
// against byte loops for sizes around glibc's thresholds, both overlaps.
static void check_string_ops(void) {
  enum { kBuf = 1 << 20, kBase = 1000, kFar = 500000 };
  static uint8_t src[kBuf], buf[kBuf], want[kBuf];
  static const size_t sizes[] = {1,    15,   63,   64,    65,    255,    2047,  2048,
                                 2049, 4095, 4097, 65535, 65537, 262143, 300001};
  for (size_t i = 0; i < kBuf; i++) src[i] = (uint8_t)next_u32();
  int ok = 1;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    size_t end = kBase + n + 100;  // everything the overlapping ops touch
    for (int shift = -65; shift <= 65; shift += 13) {
      if (shift == 0) continue;
      memcpy(buf, src, end);
      memcpy(want, src, end);
      size_t from = kBase, to = kBase + shift;
      for (size_t i = 0; i < n; i++) {  // memmove semantics, byte by byte
        size_t j = shift > 0 ? n - 1 - i : i;
        want[to + j] = want[from + j];
      }
      memmove(buf + to, buf + from, n);
      ok &= memcmp(buf, want, end) == 0;
      memset(buf + 7, 0xa5, n);
      for (size_t i = 0; i < n; i++) want[7 + i] = 0xa5;
      ok &= memcmp(buf, want, end) == 0;
      memcpy(buf + kFar, src + 3 + shift + 65, n);  // disjoint, odd alignments
      for (size_t i = 0; i < n; i++) ok &= buf[kFar + i] == src[3 + shift + 65 + i];
    }
  }
  check("glibc memcpy/memmove/memset, 1 B..300 KB", ok);
}

// n million iterations of 4 scalar instructions, or of 2 zmm instructions
// (VPDPBUSD, VFMADD231PS) and 2 scalar ones: time them from the host, as the
// guest's clock counts instructions, not seconds.
static void spin(long n_million, int zmm) {
  long n = n_million * 1000000L;
  uint64_t x = 0, y = 1;
  if (!zmm) {
    __asm__ volatile(
        "1:\n\t"
        "add %1, %0\n\t"
        "add $1, %1\n\t"
        "dec %2\n\t"
        "jnz 1b\n\t"
        : "+r"(x), "+r"(y), "+r"(n));
  } else {
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vpternlogd $0xff, %%zmm1, %%zmm1, %%zmm1\n\t"
        "1:\n\t"
        "vpdpbusd %%zmm1, %%zmm1, %%zmm0\n\t"
        "vfmadd231ps %%zmm1, %%zmm1, %%zmm2\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2");
  }
  printf("spin: %ld M iterations of 4 %s instructions done (%llu)\n", n_million,
         zmm ? "zmm + scalar" : "scalar", (unsigned long long)x);
}

int main(int argc, char** argv) {
  int inject = 0;
  long spin_million = 0;
  int spin_zmm = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--inject-mismatch") == 0) {
      inject = 1;
    } else if (strcmp(argv[i], "--spin") == 0 && i + 1 < argc) {
      spin_million = atol(argv[++i]);
    } else if (strcmp(argv[i], "--spin-zmm") == 0 && i + 1 < argc) {
      spin_million = atol(argv[++i]);
      spin_zmm = 1;
    } else {
      fprintf(stderr, "usage: %s [--inject-mismatch] [--spin N | --spin-zmm N]\n", argv[0]);
      return 2;
    }
  }
  __builtin_cpu_init();
  int f = __builtin_cpu_supports("avx512f");
  int bw = __builtin_cpu_supports("avx512bw");
  int vl = __builtin_cpu_supports("avx512vl");
  int vnni = __builtin_cpu_supports("avx512vnni");
  int bf16 = __builtin_cpu_supports("avx512bf16");
  printf(
      "__builtin_cpu_supports: avx512f=%d avx512bw=%d avx512vl=%d avx512vnni=%d "
      "avx512bf16=%d\n",
      !!f, !!bw, !!vl, !!vnni, !!bf16);
  if (!f || !bw || !vl || !vnni) {
    printf("selftest: this CPU lacks AVX512F/BW/VL/VNNI; nothing run\n");
    return 2;
  }
  check_dpbusd(inject);
  check_fmadd();
  check_masked_tail();
  check_string_ops();
  if (spin_million > 0) spin(spin_million, spin_zmm);
  printf("selftest: %s\n", n_failed ? "FAILED" : "passed");
  return n_failed ? 1 : 0;
}
