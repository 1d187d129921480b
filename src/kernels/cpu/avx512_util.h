// Small AVX-512 helpers shared by the CPU kernels (compiled only inside
// functions that carry the matching target attribute: AVX-512 F, BW and VL;
// the integer kernels add VNNI).
#pragma once

// GCC 12's AVX-512 headers initialise their "undefined" vectors from
// themselves, which -Wuninitialized then reports wherever such an intrinsic
// is inlined (GCC bug 105593, fixed in GCC 13). This silences it in the
// kernel files that include this header.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstdint>

namespace r1::kernels::cpu {

// Sixteen bf16 values widened to f32 (a bf16 is the top half of an f32);
// the lanes past `mask` read nothing and are zero.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 widen_bf16x16(const uint16_t* p,
                                                                                 __mmask16 mask) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 widen_bf16x16(const uint16_t* p) {
  const __m512i wide =
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// A vector whose lanes 0-7 hold s[i] and lanes 8-15 hold s[j], for i, j in
// 0..3 (s: four floats): the per-block scales of a vector that spans two
// blocks of 32 int8 products (eight i32 lanes each).
template <int I, int J>
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 spread_pair(__m128 s) {
  const __m512i idx = _mm512_set_epi32(J, J, J, J, J, J, J, J, I, I, I, I, I, I, I, I);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

}  // namespace r1::kernels::cpu
