// Dot products of one weight row with one f32 activation row, f32
// accumulation. Each has an AVX-512, an AVX2+FMA+F16C and a baseline x86-64
// body, picked per call by active_isa() (R1SERVE_ISA can force one).
#include <immintrin.h>

#include <bit>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {

// The baseline bodies: what the compiler makes of a plain loop for x86-64.
float dot_f32_scalar(const float* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

float dot_bf16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    acc += std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16) * x[i];
  }
  return acc;
}

float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

// Four accumulators hide the FMA latency; the tail is scalar.
__attribute__((target("avx2,fma"))) float dot_f32_avx2(const float* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
  }
  float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

__attribute__((target("avx2,fma"))) float dot_bf16_avx2(const uint16_t* w, const float* x,
                                                        int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(widen_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(widen_bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(widen_bf16x8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(widen_bf16x8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(widen_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
  float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const uint16_t* w, const float* x,
                                                            int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  float acc = hsum256(_mm256_add_ps(a0, a1));
  // _cvtsh_ss, not the out-of-line f16_to_f32: no call with dirty upper halves.
  for (; i < n; ++i) acc += _cvtsh_ss(w[i]) * x[i];
  return acc;
}

// AVX-512 bodies: the plain loops compiled for 512-bit vectors.
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) float dot_f32_avx512(const float* w,
                                                                               const float* x,
                                                                               int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc) simdlen(16)
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) float dot_bf16_avx512(const uint16_t* w,
                                                                                const float* x,
                                                                                int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc) simdlen(16)
  for (int64_t i = 0; i < n; ++i) {
    acc += std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16) * x[i];
  }
  return acc;
}

}  // namespace

float dot_f32(const float* w, const float* x, int64_t n) {
  switch (active_isa()) {
    case Isa::kAvx512:
      return dot_f32_avx512(w, x, n);
    case Isa::kAvx2:
      return dot_f32_avx2(w, x, n);
    default:
      return dot_f32_scalar(w, x, n);
  }
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  switch (active_isa()) {
    case Isa::kAvx512:
      return dot_bf16_avx512(w, x, n);
    case Isa::kAvx2:
      return dot_bf16_avx2(w, x, n);
    default:
      return dot_bf16_scalar(w, x, n);
  }
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  // AVX-512 machines take the F16C body: the conversion, not the width, is
  // what matters for f16.
  return active_isa() == Isa::kScalar ? dot_f16_scalar(w, x, n) : dot_f16_avx2(w, x, n);
}

}  // namespace r1::kernels::cpu
