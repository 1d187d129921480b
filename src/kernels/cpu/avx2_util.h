// Small AVX2 helpers shared by the CPU kernels (compiled only inside
// functions that carry the matching target attribute).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace r1::kernels::cpu {

// Sum of the eight lanes.
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Eight bf16 values widened to f32 (a bf16 is the top half of an f32).
__attribute__((target("avx2,fma"))) inline __m256 widen_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

}  // namespace r1::kernels::cpu
