// Dot products compiled three times (AVX-512, AVX2+FMA+F16C, baseline) and
// chosen by the loader's ifunc resolver on first call.
#include <immintrin.h>
#include <bit>

#include <cstdint>

#include "core/cpu_features.h"
#include "core/dtype.h"

#include "kernels/cpu_ops.h"

#define R1_MULTIVERSION \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))

namespace r1::kernels::cpu {

R1_MULTIVERSION float dot_f32(const float* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

R1_MULTIVERSION float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    acc += std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16) * x[i];
  }
  return acc;
}

namespace {

// F16C widening, 8 halves at a time; only called when the CPU has F16C, AVX2
// and FMA (checked once below). Written with intrinsics because clang 14 (the
// asan preset) has no _Float16 on x86.
__attribute__((target("avx2,fma,f16c"))) float dot_f16_f16c(const uint16_t* w, const float* x,
                                                            int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(acc0, acc1));
  float acc = 0.0f;
  for (float l : lanes) acc += l;
  for (; i < n; ++i) acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

}  // namespace

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  static const bool has_f16c = cpu_features().f16c && cpu_features().avx2 && cpu_features().fma;
  return has_f16c ? dot_f16_f16c(w, x, n) : dot_f16_scalar(w, x, n);
}

}  // namespace r1::kernels::cpu
