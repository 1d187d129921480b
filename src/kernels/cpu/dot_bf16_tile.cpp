// One bf16 weight row against up to 3 f32 activation rows at a time: the
// register-blocked product behind bf16 decode (1 token) and prefill (3
// tokens per pass over the row). Each widened weight vector serves every
// token of the tile, so a 3-token tile issues 4 widenings and 12 FMAs per
// 32 columns, where one dot product per (row, token) issues one widening
// per FMA.
//
// Every (row, token) result is computed with the same sequence whatever the
// tile: four f32 accumulators taking groups of 8 columns in turn (four
// chains hide the FMA latency), the remaining groups of 8 into the first,
// the horizontal sum of (a0 + a1) + (a2 + a3), then the scalar tail. So a
// token's logits do not depend on how many tokens share the step or how
// the rows fall to threads, only on the ISA path.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {


__attribute__((target("avx2,fma"))) inline __m256 widen_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// The columns past the last multiple of 8, one fused multiply-add each
// (explicit intrinsics, so every tile shape rounds alike).
__attribute__((target("avx2,fma"))) inline float tail(float acc, const uint16_t* w,
                                                         const float* x, int64_t from, int64_t n) {
  for (int64_t i = from; i < n; ++i) {
    acc = _mm_cvtss_f32(
        _mm_fmadd_ss(_mm_set_ss(bf16_to_f32(w[i])), _mm_set_ss(x[i]), _mm_set_ss(acc)));
  }
  return acc;
}

template <int T>
__attribute__((target("avx2,fma"))) void tile_avx2(const uint16_t* w, const float* const* x,
                                                   int64_t n, float* out) {
  __m256 acc[T][4];
  for (int t = 0; t < T; ++t) {
    for (int k = 0; k < 4; ++k) acc[t][k] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // (no software prefetch: the hardware streamer does better on one row)
    __m256 wv[4];
    for (int k = 0; k < 4; ++k) wv[k] = widen_bf16x8(w + i + 8 * k);
    for (int t = 0; t < T; ++t) {
      for (int k = 0; k < 4; ++k) {
        acc[t][k] = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(x[t] + i + 8 * k), acc[t][k]);
      }
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 wv = widen_bf16x8(w + i);
    for (int t = 0; t < T; ++t)
      acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + i), acc[t][0]);
  }
  for (int t = 0; t < T; ++t) {
    const __m256 sum =
        _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]));
    out[t] = tail(hsum256(sum), w, x[t], i, n);
  }
}

// The scalar path's one (row, token) product; every scalar shape calls it.
float row_dot_scalar(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

}  // namespace

void dot_bf16_tile(const uint16_t* w, const float* const* x, int n_x, int64_t n, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < n_x; ++t) out[t] = row_dot_scalar(w, x[t], n);
    return;
  }
  switch (n_x) {
    case 1:
      return tile_avx2<1>(w, x, n, out);
    case 2:
      return tile_avx2<2>(w, x, n, out);
    default:
      return tile_avx2<3>(w, x, n, out);
  }
}

}  // namespace r1::kernels::cpu
