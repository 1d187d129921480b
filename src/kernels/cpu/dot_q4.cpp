// int4 weight rows (groups of 32 with f16 scales) against int8 activation
// rows. Each 16-byte group unpacks to 32 nibbles (q + 8); maddubs multiplies
// them as unsigned bytes by the signed activations, and 8 * sum(x) comes off
// after (offset_of).
//
// As for int8, every shape (R rows x 1 token for decode, 1 row x N tokens
// for prefill) computes each (row, token) result with the same instruction
// sequence, so results do not depend on batch composition or threads.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

constexpr int kPrefetchAhead = 2048;  // bytes ahead of the weight stream

float row_dot_scalar(const uint8_t* w, const uint16_t* ws, const int8_t* xq, const float* xs,
                     int64_t padded) {
  float acc = 0.0f;
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    const uint8_t* q = w + b * 16;
    const int8_t* x = xq + b * kQuantBlock;
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) s += ((q[j] & 0x0F) - 8) * x[j] + ((q[j] >> 4) - 8) * x[j + 16];
    acc += static_cast<float>(s) * (xs[b] * f16_to_f32(ws[b]));
  }
  return acc;
}

// Block b of a packed row as 32 unsigned nibble values (q + 8, in 0..15).
__attribute__((target("avx2,fma"))) inline __m256i unpack(const uint8_t* w, int64_t b) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 16));
  // Low nibbles are values 0..15, high nibbles values 16..31.
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 8 * (sum of x over each group of 4 bytes), as i32 lanes: the offset the
// unsigned nibbles carry. maddubs takes the nibbles as its unsigned operand
// (15 * 127 * 2 cannot saturate), so (q + 8) . x - 8 * sum(x) = q . x
// exactly, without the sign juggling int8 needs.
__attribute__((target("avx2,fma"))) inline __m256i offset_of(__m256i x) {
  const __m256i sums =
      _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), x), _mm256_set1_epi16(1));
  return _mm256_slli_epi32(sums, 3);
}

__attribute__((target("avx2,fma"))) inline __m256 block_step(__m256i nibbles, __m256i x,
                                                             __m256i offset, float scale,
                                                             __m256 acc) {
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles, x), _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(p, offset)), _mm256_set1_ps(scale),
                         acc);
}

template <int R>
__attribute__((target("avx2,fma,f16c"))) void rows_avx2(const uint8_t* w, int64_t row_stride,
                                                        const uint16_t* ws, int64_t ws_stride,
                                                        const int8_t* xq, const float* xs,
                                                        int64_t padded, float* out) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
    const __m256i offset = offset_of(xv);
    for (int r = 0; r < R; ++r) {
      const uint8_t* wr = w + r * row_stride;
      if ((b & 3) == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(wr + b * 16) + kPrefetchAhead, _MM_HINT_T0);
      }
      acc[r] =
          block_step(unpack(wr, b), xv, offset, xs[b] * _cvtsh_ss(ws[r * ws_stride + b]), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum256(acc[r]);
}

template <int N>
__attribute__((target("avx2,fma,f16c"))) void tokens_avx2(const uint8_t* w, const uint16_t* ws,
                                                          const int8_t* const* xq,
                                                          const float* const* xs, int64_t padded,
                                                          float* out) {
  __m256 acc[N];
  for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    const __m256i wv = unpack(w, b);
    const float wscale = _cvtsh_ss(ws[b]);
    for (int t = 0; t < N; ++t) {
      const __m256i xv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + b * kQuantBlock));
      acc[t] = block_step(wv, xv, offset_of(xv), xs[t][b] * wscale, acc[t]);
    }
  }
  for (int t = 0; t < N; ++t) out[t] = hsum256(acc[t]);
}

}  // namespace

void dot_q4(const uint8_t* w, const uint16_t* w_scales, const int8_t* const* xq,
            const float* const* xs, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < n_x; ++t) out[t] = row_dot_scalar(w, w_scales, xq[t], xs[t], padded);
    return;
  }
  switch (n_x) {
    case 1:
      return tokens_avx2<1>(w, w_scales, xq, xs, padded, out);
    case 2:
      return tokens_avx2<2>(w, w_scales, xq, xs, padded, out);
    case 3:
      return tokens_avx2<3>(w, w_scales, xq, xs, padded, out);
    default:
      return tokens_avx2<4>(w, w_scales, xq, xs, padded, out);
  }
}

void dot_q4_rows(const uint8_t* w, int64_t row_stride, const uint16_t* w_scales, int64_t ws_stride,
                 int n_rows, const int8_t* xq, const float* xs, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int r = 0; r < n_rows; ++r) {
      out[r] = row_dot_scalar(w + r * row_stride, w_scales + r * ws_stride, xq, xs, padded);
    }
    return;
  }
  switch (n_rows) {
    case 1:
      return rows_avx2<1>(w, row_stride, w_scales, ws_stride, xq, xs, padded, out);
    case 2:
      return rows_avx2<2>(w, row_stride, w_scales, ws_stride, xq, xs, padded, out);
    case 3:
      return rows_avx2<3>(w, row_stride, w_scales, ws_stride, xq, xs, padded, out);
    default:
      return rows_avx2<4>(w, row_stride, w_scales, ws_stride, xq, xs, padded, out);
  }
}

}  // namespace r1::kernels::cpu
