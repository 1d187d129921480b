// int4 weight rows (groups of 32 with f16 scales) against int8 activation
// rows. Each 16-byte group unpacks to 32 signed values in [-8, 7]; the
// products then go through the same maddubs sign trick as int8.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

void dot_q4_scalar(const uint8_t* w, const uint16_t* ws, const int8_t* const* xq,
                   const float* const* xs, int n_x, int64_t padded, float* out) {
  for (int t = 0; t < n_x; ++t) {
    float acc = 0.0f;
    for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
      const uint8_t* q = w + b * 16;
      const int8_t* x = xq[t] + b * kQuantBlock;
      int32_t s = 0;
      for (int j = 0; j < 16; ++j) {
        s += ((q[j] & 0x0F) - 8) * x[j] + ((q[j] >> 4) - 8) * x[j + 16];
      }
      acc += static_cast<float>(s) * (xs[t][b] * f16_to_f32(ws[b]));
    }
    out[t] = acc;
  }
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

template <int N>
__attribute__((target("avx2,fma,f16c"))) void dot_q4_avx2_n(const uint8_t* w, const uint16_t* ws,
                                                            const int8_t* const* xq,
                                                            const float* const* xs, int64_t padded,
                                                            float* out) {
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  const __m256i eight = _mm256_set1_epi8(8);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[N];
  for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 16));
    // Low nibbles are values 0..15, high nibbles values 16..31.
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    const __m256i wv = _mm256_sub_epi8(_mm256_and_si256(both, low_mask), eight);
    const float wscale = _cvtsh_ss(ws[b]);
    for (int t = 0; t < N; ++t) {
      const __m256i xv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + b * kQuantBlock));
      const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(wv, xv));
      const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
      acc[t] = _mm256_fmadd_ps(p, _mm256_set1_ps(xs[t][b] * wscale), acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = hsum(acc[t]);
}

constexpr int kPrefetchAhead = 2048;  // bytes ahead of the weight stream

// acc + block b of w . x, scaled.
__attribute__((target("avx2,fma,f16c"))) inline __m256 q4_block(const uint8_t* w,
                                                                const uint16_t* ws,
                                                                const int8_t* xq, const float* xs,
                                                                int64_t b, __m256 acc) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 16));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  const __m256i wv =
      _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(wv, xv));
  const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
  return _mm256_fmadd_ps(p, _mm256_set1_ps(xs[b] * _cvtsh_ss(ws[b])), acc);
}

// Decode (one activation row): four blocks per iteration with independent
// accumulators, and a software prefetch of the weight stream (as dot_q8).
__attribute__((target("avx2,fma,f16c"))) float dot_q4_avx2_1(const uint8_t* w, const uint16_t* ws,
                                                             const int8_t* xq, const float* xs,
                                                             int64_t padded) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                 _mm256_setzero_ps()};
  const int64_t n_blocks = padded / kQuantBlock;
  int64_t b = 0;
  for (; b + 4 <= n_blocks; b += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(w + b * 16) + kPrefetchAhead, _MM_HINT_T0);
    for (int k = 0; k < 4; ++k) a[k] = q4_block(w, ws, xq, xs, b + k, a[k]);
  }
  for (; b < n_blocks; ++b) a[0] = q4_block(w, ws, xq, xs, b, a[0]);
  return hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
}

}  // namespace

void dot_q4(const uint8_t* w, const uint16_t* w_scales, const int8_t* const* xq,
            const float* const* xs, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    dot_q4_scalar(w, w_scales, xq, xs, n_x, padded, out);
    return;
  }
  switch (n_x) {
    case 1:
      out[0] = dot_q4_avx2_1(w, w_scales, xq[0], xs[0], padded);
      return;
    case 2:
      return dot_q4_avx2_n<2>(w, w_scales, xq, xs, padded, out);
    case 3:
      return dot_q4_avx2_n<3>(w, w_scales, xq, xs, padded, out);
    default:
      return dot_q4_avx2_n<4>(w, w_scales, xq, xs, padded, out);
  }
}

}  // namespace r1::kernels::cpu
