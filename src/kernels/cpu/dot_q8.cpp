// int8 weight rows against int8 activation rows (blocks of 32, each with its
// own f32 scale). AVX2 multiplies |x| (u8) by w*sign(x) (s8) with maddubs:
// both factors are within [-127, 127], so the pairwise i16 sums cannot
// saturate (2 * 127 * 127 < 32767).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

int32_t block_dot_scalar(const int8_t* w, const int8_t* x) {
  int32_t s = 0;
  for (int j = 0; j < kQuantBlock; ++j) s += static_cast<int32_t>(w[j]) * x[j];
  return s;
}

void dot_q8_scalar(const int8_t* w, const float* ws, int64_t group, const int8_t* const* xq,
                   const float* const* xs, int n_x, int64_t padded, float* out) {
  for (int t = 0; t < n_x; ++t) {
    float acc = 0.0f;
    for (int64_t g0 = 0; g0 < padded; g0 += group) {
      float gacc = 0.0f;
      for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
        gacc += static_cast<float>(block_dot_scalar(w + c, xq[t] + c)) * xs[t][c / kQuantBlock];
      }
      acc += gacc * ws[g0 / group];
    }
    out[t] = acc;
  }
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// 8 lanes of i32 partial sums of w . x over one block of 32.
__attribute__((target("avx2,fma"))) inline __m256 block_dot_avx2(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Up to 4 activation rows per call: each weight block is loaded once for all
// of them (prefill reuses it from registers; decode has n_x = 1).
template <int N>
__attribute__((target("avx2,fma"))) void dot_q8_avx2_n(const int8_t* w, const float* ws,
                                                       int64_t group, const int8_t* const* xq,
                                                       const float* const* xs, int64_t padded,
                                                       float* out) {
  __m256 acc[N];
  for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    __m256 gacc[N];
    for (int t = 0; t < N; ++t) gacc[t] = _mm256_setzero_ps();
    for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + c));
      for (int t = 0; t < N; ++t) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + c));
        gacc[t] = _mm256_fmadd_ps(block_dot_avx2(wv, xv), _mm256_set1_ps(xs[t][c / kQuantBlock]),
                                  gacc[t]);
      }
    }
    const __m256 scale = _mm256_set1_ps(ws[g0 / group]);
    for (int t = 0; t < N; ++t) acc[t] = _mm256_fmadd_ps(gacc[t], scale, acc[t]);
  }
  for (int t = 0; t < N; ++t) out[t] = hsum(acc[t]);
}

constexpr int kPrefetchAhead = 4096;  // bytes ahead of the weight stream (swept 512-8192)

// Decode (one activation row): four independent accumulators over
// consecutive blocks, so the FMA latency chain does not bound the loop.
// Both (and the prefetch) measured on the 1.5b shape with 2 threads: see
// docs/PERFORMANCE.md.
__attribute__((target("avx2,fma"))) float dot_q8_avx2_1(const int8_t* w, const float* ws,
                                                        int64_t group, const int8_t* xq,
                                                        const float* xs, int64_t padded) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t c = g0;
    for (; c + 4 * kQuantBlock <= g0 + group; c += 4 * kQuantBlock) {
      _mm_prefetch(reinterpret_cast<const char*>(w + c) + kPrefetchAhead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + c) + kPrefetchAhead + 64, _MM_HINT_T0);
      for (int k = 0; k < 4; ++k) {
        const int64_t o = c + k * kQuantBlock;
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + o));
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + o));
        a[k] = _mm256_fmadd_ps(block_dot_avx2(wv, xv), _mm256_set1_ps(xs[o / kQuantBlock]), a[k]);
      }
    }
    for (; c < g0 + group; c += kQuantBlock) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + c));
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + c));
      a[0] = _mm256_fmadd_ps(block_dot_avx2(wv, xv), _mm256_set1_ps(xs[c / kQuantBlock]), a[0]);
    }
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(ws[g0 / group]), acc);
  }
  return hsum(acc);
}

}  // namespace

void dot_q8(const int8_t* w, const float* w_scales, int64_t group, const int8_t* const* xq,
            const float* const* xs, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    dot_q8_scalar(w, w_scales, group, xq, xs, n_x, padded, out);
    return;
  }
  switch (n_x) {
    case 1:
      out[0] = dot_q8_avx2_1(w, w_scales, group, xq[0], xs[0], padded);
      return;
    case 2:
      return dot_q8_avx2_n<2>(w, w_scales, group, xq, xs, padded, out);
    case 3:
      return dot_q8_avx2_n<3>(w, w_scales, group, xq, xs, padded, out);
    default:
      return dot_q8_avx2_n<4>(w, w_scales, group, xq, xs, padded, out);
  }
}

}  // namespace r1::kernels::cpu
