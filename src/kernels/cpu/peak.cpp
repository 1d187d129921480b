// Each loop keeps enough independent accumulators in flight to cover the
// instruction's latency on every core we target (up to 12 for a 5-cycle
// instruction at two per cycle). The operands are laundered through an
// empty asm statement before each instruction, so the compiler can neither
// hoist a loop-invariant product nor merge identical ones; the statement
// emits no instruction. The loops are timed on every thread of the pool at
// once, best of several rounds.
#include "kernels/cpu/peak.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/cpu_features.h"

namespace r1::kernels::cpu {

namespace {

// Iterations of the scalar loops; the vector loops run a quarter as many,
// 8 to 12 instructions each: about 10-20 ms a round on a 3 GHz core, long
// against the pool's wake-up.
constexpr int64_t kIterations = 1 << 24;
constexpr int kRounds = 5;

// In the calling function, whose target attribute lets the compiler give a
// 256- or 512-bit operand its register (clang refuses it in a helper
// without the attribute).
#define R1_LAUNDER(v) asm volatile("" : "+x"(v))

// Each returns the multiply-adds it did; `sink` keeps the result alive.
#define R1_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
R1_VNNI int64_t int8_vnni_loop(int64_t n, std::atomic<int64_t>* sink) {
  constexpr int K = 12;
  __m512i acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm512_set1_epi32(k);
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) {
      R1_LAUNDER(b);
      acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
    }
  }
  for (int k = 1; k < K; ++k) acc[0] = _mm512_add_epi32(acc[0], acc[k]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, acc[0]);
  sink->fetch_add(lanes[0], std::memory_order_relaxed);
  return n * K * 64;
}
#undef R1_VNNI

__attribute__((target("avx2"))) int64_t int8_avx2_loop(int64_t n, std::atomic<int64_t>* sink) {
  constexpr int K = 8;
  __m256i acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm256_set1_epi32(k);
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) {
      R1_LAUNDER(b);
      acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    }
  }
  for (int k = 1; k < K; ++k) acc[0] = _mm256_add_epi32(acc[0], acc[k]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  sink->fetch_add(lanes[0], std::memory_order_relaxed);
  return n * K * 32;
}

#define R1_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
R1_BF16 int64_t bf16_dp_loop(int64_t n, std::atomic<int64_t>* sink) {
  constexpr int K = 12;
  __m512 acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm512_setzero_ps();
  __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  __m512bh b = a;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) {
      R1_LAUNDER(b);
      acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
    }
  }
  for (int k = 1; k < K; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc[0]);
  sink->fetch_add(static_cast<int64_t>(lanes[0]), std::memory_order_relaxed);
  return n * K * 32;
}
#undef R1_BF16

__attribute__((target("avx512f"))) int64_t f32_avx512_loop(int64_t n, std::atomic<int64_t>* sink) {
  constexpr int K = 12;
  __m512 acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm512_setzero_ps();
  __m512 a = _mm512_set1_ps(1e-7f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) {
      R1_LAUNDER(b);
      acc[k] = _mm512_fmadd_ps(a, b, acc[k]);
    }
  }
  for (int k = 1; k < K; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc[0]);
  sink->fetch_add(static_cast<int64_t>(lanes[0]), std::memory_order_relaxed);
  return n * K * 16;
}

__attribute__((target("avx2,fma"))) int64_t f32_avx2_loop(int64_t n, std::atomic<int64_t>* sink) {
  constexpr int K = 10;
  __m256 acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm256_setzero_ps();
  __m256 a = _mm256_set1_ps(1e-7f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) {
      R1_LAUNDER(b);
      acc[k] = _mm256_fmadd_ps(a, b, acc[k]);
    }
  }
  for (int k = 1; k < K; ++k) acc[0] = _mm256_add_ps(acc[0], acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  sink->fetch_add(static_cast<int64_t>(lanes[0]), std::memory_order_relaxed);
  return n * K * 8;
}

int64_t scalar_loop(int64_t n, std::atomic<int64_t>* sink) {
  int32_t acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  int32_t b = 3, c = 7;
  for (int64_t i = 0; i < n; ++i) {
    for (int32_t& a : acc) {
      asm volatile("" : "+r"(b), "+r"(c));
      a += b * c;
    }
  }
  int32_t sum = 0;
  for (int32_t a : acc) sum += a;
  sink->fetch_add(sum, std::memory_order_relaxed);
  return n * 8;
}

int64_t scalar_f32_loop(int64_t n, std::atomic<int64_t>* sink) {
  float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  float b = 1e-7f;
  for (int64_t i = 0; i < n; ++i) {
    for (float& a : acc) {
      asm volatile("" : "+x"(b));
      a += b * 1e-3f;
    }
  }
  float sum = 0;
  for (float a : acc) sum += a;
  sink->fetch_add(static_cast<int64_t>(sum), std::memory_order_relaxed);
  return n * 8;
}

using Loop = int64_t (*)(int64_t, std::atomic<int64_t>*);

double best_rate(ThreadPool& pool, Loop loop, int64_t iterations) {
  const size_t n = static_cast<size_t>(pool.n_threads());
  std::atomic<int64_t> sink{0}, macs{0};
  auto round = [&] {
    macs = 0;
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](size_t begin, size_t end, int) {
      for (size_t i = begin; i < end; ++i) macs.fetch_add(loop(iterations, &sink));
    });
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return static_cast<double>(macs.load()) / s;
  };
  round();  // warm-up: clocks ramp up, threads wake
  double best = 0.0;
  for (int r = 0; r < kRounds; ++r) best = std::max(best, round());
  return best;
}

#undef R1_LAUNDER

}  // namespace

ArithmeticPeak measure_int8_peak(ThreadPool& pool) {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512vnni) {
    return {best_rate(pool, int8_vnni_loop, kIterations / 4), "vpdpbusd zmm"};
  }
  if (f.avx2) {
    return {best_rate(pool, int8_avx2_loop, kIterations / 4), "vpmaddubsw+vpmaddwd ymm"};
  }
  return {best_rate(pool, scalar_loop, kIterations), "scalar imul+add"};
}

ArithmeticPeak measure_bf16_peak(ThreadPool& pool) {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512bf16) {
    return {best_rate(pool, bf16_dp_loop, kIterations / 4), "vdpbf16ps zmm"};
  }
  if (f.avx512f) return {best_rate(pool, f32_avx512_loop, kIterations / 4), "vfmadd231ps zmm"};
  if (f.avx2 && f.fma) return {best_rate(pool, f32_avx2_loop, kIterations / 4), "vfmadd231ps ymm"};
  return {best_rate(pool, scalar_f32_loop, kIterations), "scalar mulss+addss"};
}

}  // namespace r1::kernels::cpu
