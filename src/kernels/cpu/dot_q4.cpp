// int4 weight rows (groups of 32 with f16 scales, paired-block layout of
// ops.h) against int8 activation rows. maddubs multiplies the stored nibbles
// (q + 8, unsigned, 0..15) by the signed activations (15 * 127 * 2 cannot
// saturate); the caller's per-block offsets 8 * sum(x) account for the +8.
//
// Per block and row the AVX2 path issues half a mask-and-shift (one 32-byte
// load unpacks two blocks), maddubs, madd, a conversion and one FMA with the
// block's combined scale x_scale * w_scale. The combined scales are computed
// eight blocks at a time into a small array, and the offset of the +8 in
// the stored nibbles is taken off once at the end from a sum kept per eight
// blocks (chunk_scales), so no f16 conversion, broadcast from a register or
// offset subtraction sits in the inner loop.
//
// As for int8, every shape (R rows x 1 token for decode, 2 rows x 4 tokens
// and 1 row x N tokens for prefill) computes each (row, token) result with the same instruction
// sequence: acc = fma(float(block sum), combined scale, acc) over the blocks
// in order, the offset sum per eight blocks, then horizontal sums. Results therefore do not depend
// on batch composition or threads, only on the ISA path.
//
// The AVX-512 VNNI bodies take four blocks per 64-byte load (two stored
// pairs): the low nibbles are blocks b and b + 2, the high ones b + 1 and
// b + 3, each matched by an activation vector assembled from two 32-byte
// halves. vpdpbusd sums four nibble x activation products per i32 lane
// (exact), lanes 0-7 hold one block and 8-15 the other, and one conversion
// and multiply (or FMA) with the two blocks' combined scales finish both;
// the low and high halves of a load are added before they join the
// accumulator (vnni_pair_step). Scales and the
// +8 offset are handled as in the AVX2 bodies (the same chunk functions), and
// all shapes share one template.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

constexpr int kPrefetchAhead =
    4096;                      // bytes ahead of the weight stream (1024-8192 tried: 4096 best)
constexpr int64_t kChunk = 8;  // blocks whose combined scales are computed together

float row_dot_scalar(const uint8_t* w, const uint16_t* ws, const int8_t* xq, const float* xs,
                     int64_t padded) {
  const int64_t n_blocks = padded / kQuantBlock;
  float acc = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* x = xq + b * kQuantBlock;
    int32_t s = 0;
    for (int j = 0; j < kQuantBlock; ++j) s += (q4_stored(w, n_blocks, b, j) - 8) * x[j];
    acc += static_cast<float>(s) * (xs[b] * f16_to_f32(ws[b]));
  }
  return acc;
}

// The 32 stored nibbles of each block of the pair starting at block b.
__attribute__((target("avx2,fma"))) inline void unpack_pair(const uint8_t* w, int64_t b,
                                                            __m256i& even, __m256i& odd) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * 16));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  even = _mm256_and_si256(raw, mask);
  odd = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
}

// The 32 stored nibbles of the unpaired last block b.
__attribute__((target("avx2,fma"))) inline __m256i unpack_single(const uint8_t* w, int64_t b) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * 16));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

__attribute__((target("avx2,fma"))) inline __m256i load_x(const int8_t* xq, int64_t b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQuantBlock));
}

// acc + float(nibbles . x) * scale: the block sum over the stored nibbles,
// before the offset (see below).
__attribute__((target("avx2,fma"))) inline __m256 block_step(__m256i nibbles, __m256i x,
                                                             const float* scale, __m256 acc) {
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles, x), _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(scale), acc);
}

// The scales of up to eight blocks from b, zero past the n-th. The combined
// scale of block b + k is xs[b + k] * w_scale(ws[b + k]); corr accumulates
// what the stored nibbles' +8 added: sum over blocks of w_scale * (xs * 8
// sum(x)); the result is then hsum(acc) - hsum(corr). Every shape computes
// these with the functions below, and the vector and scalar branches round
// alike, so a (row, token) result has the same bits whichever shape made it.
__attribute__((target("avx2,fma,f16c"))) inline __m256 chunk_w(const uint16_t* ws, int64_t b,
                                                               int64_t n) {
  if (n == kChunk)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + b)));
  alignas(32) float w8[kChunk] = {};
  for (int64_t k = 0; k < n; ++k) w8[k] = _cvtsh_ss(ws[b + k]);
  return _mm256_load_ps(w8);
}

struct ChunkX {
  __m256 scale;   // xs
  __m256 offset;  // xs * 8 sum(x)
};

__attribute__((target("avx2,fma,f16c"))) inline ChunkX chunk_x(const float* xs, const int32_t* xo,
                                                               int64_t b, int64_t n) {
  __m256 xsv, off;
  if (n == kChunk) {
    xsv = _mm256_loadu_ps(xs + b);
    off = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xo + b)));
  } else {
    alignas(32) float x8[kChunk] = {}, o8[kChunk] = {};
    for (int64_t k = 0; k < n; ++k) {
      x8[k] = xs[b + k];
      o8[k] = static_cast<float>(xo[b + k]);
    }
    xsv = _mm256_load_ps(x8);
    off = _mm256_load_ps(o8);
  }
  return {xsv, _mm256_mul_ps(xsv, off)};
}

// Stores the combined scales of one (row, token) chunk; returns corr updated.
__attribute__((target("avx2,fma,f16c"))) inline __m256 apply_chunk(__m256 wsc, const ChunkX& x,
                                                                   float* scale, __m256 corr) {
  _mm256_store_ps(scale, _mm256_mul_ps(x.scale, wsc));
  return _mm256_fmadd_ps(wsc, x.offset, corr);
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 chunk_scales(const float* xs,
                                                                    const uint16_t* ws,
                                                                    const int32_t* xo, int64_t b,
                                                                    int64_t n, float* scale,
                                                                    __m256 corr) {
  return apply_chunk(chunk_w(ws, b, n), chunk_x(xs, xo, b, n), scale, corr);
}

// The combined scales of up to kSpan blocks are computed first, then the
// blocks run: no stores inside the block loop, so the accumulators stay in
// registers (a store through an __m256 pointer may alias them).
constexpr int64_t kSpan = 64;  // blocks per pass, a multiple of kChunk

template <int R>
__attribute__((target("avx2,fma,f16c"))) void rows_avx2(const uint8_t* w, int64_t row_stride,
                                                        const uint16_t* ws, int64_t ws_stride,
                                                        const int8_t* xq, const float* xs,
                                                        const int32_t* xo, int64_t padded,
                                                        float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  // Named accumulators rather than an array: GCC keeps an array of them in
  // memory and stores it on every step.
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  auto acc = [&](int r) -> __m256& { return r == 0 ? a0 : r == 1 ? a1 : r == 2 ? a2 : a3; };
  __m256 corr[R];
  for (int r = 0; r < R; ++r) corr[r] = _mm256_setzero_ps();
  alignas(32) float scale[R][kSpan];
  for (int64_t s0 = 0; s0 < n_blocks; s0 += kSpan) {
    const int64_t s1 = n_blocks - s0 < kSpan ? n_blocks : s0 + kSpan;
    for (int64_t b0 = s0; b0 < s1; b0 += kChunk) {
      const int64_t n = s1 - b0 < kChunk ? s1 - b0 : kChunk;
      for (int r = 0; r < R; ++r) {
        corr[r] = chunk_scales(xs, ws + r * ws_stride, xo, b0, n, &scale[r][b0 - s0], corr[r]);
      }
    }
    int64_t b = s0;
    for (; b + 1 < s1; b += 2) {
      const __m256i x0 = load_x(xq, b), x1 = load_x(xq, b + 1);
      const int64_t k = b - s0;
      for (int r = 0; r < R; ++r) {
        const uint8_t* wr = w + r * row_stride;
        if ((b & 3) == 0) {
          _mm_prefetch(reinterpret_cast<const char*>(wr + b * 16) + kPrefetchAhead, _MM_HINT_T0);
        }
        __m256i even, odd;
        unpack_pair(wr, b, even, odd);
        acc(r) = block_step(even, x0, &scale[r][k], acc(r));
        acc(r) = block_step(odd, x1, &scale[r][k + 1], acc(r));
      }
    }
    if (b < s1) {  // the unpaired last block
      const __m256i x0 = load_x(xq, b);
      for (int r = 0; r < R; ++r) {
        acc(r) = block_step(unpack_single(w + r * row_stride, b), x0, &scale[r][b - s0], acc(r));
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum256(acc(r)) - hsum256(corr[r]);
}

template <int N>
__attribute__((target("avx2,fma,f16c"))) void tokens_avx2(const uint8_t* w, const uint16_t* ws,
                                                          const int8_t* const* xq,
                                                          const float* const* xs,
                                                          const int32_t* const* xo, int64_t padded,
                                                          float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  __m256 acc[N], corr[N];
  for (int t = 0; t < N; ++t) acc[t] = corr[t] = _mm256_setzero_ps();
  alignas(32) float scale[N][kChunk];
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunk) {
    const int64_t n = n_blocks - b0 < kChunk ? n_blocks - b0 : kChunk;
    for (int t = 0; t < N; ++t) corr[t] = chunk_scales(xs[t], ws, xo[t], b0, n, scale[t], corr[t]);
    int64_t k = 0;
    for (; k + 1 < n; k += 2) {
      const int64_t b = b0 + k;
      __m256i even, odd;
      unpack_pair(w, b, even, odd);
      for (int t = 0; t < N; ++t) {
        acc[t] = block_step(even, load_x(xq[t], b), &scale[t][k], acc[t]);
        acc[t] = block_step(odd, load_x(xq[t], b + 1), &scale[t][k + 1], acc[t]);
      }
    }
    if (k < n) {
      const int64_t b = b0 + k;
      const __m256i nibbles = unpack_single(w, b);
      for (int t = 0; t < N; ++t) {
        acc[t] = block_step(nibbles, load_x(xq[t], b), &scale[t][k], acc[t]);
      }
    }
  }
  for (int t = 0; t < N; ++t) out[t] = hsum256(acc[t]) - hsum256(corr[t]);
}

// 2 rows x 4 tokens (prefill): each unpacked weight pair serves four
// tokens and each activation block two rows. Scales first, then blocks, as
// in rows_avx2.
__attribute__((target("avx2,fma,f16c"))) void two_by_four_avx2(
    const uint8_t* w0, const uint8_t* w1, const uint16_t* ws0, const uint16_t* ws1,
    const int8_t* const* xq, const float* const* xs, const int32_t* const* xo, int64_t padded,
    float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
  __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  auto acc = [&](int r, int t) -> __m256& {
    if (r == 0) return t == 0 ? a00 : t == 1 ? a01 : t == 2 ? a02 : a03;
    return t == 0 ? a10 : t == 1 ? a11 : t == 2 ? a12 : a13;
  };
  __m256 corr[2][4];
  for (int r = 0; r < 2; ++r) {
    for (int t = 0; t < 4; ++t) corr[r][t] = _mm256_setzero_ps();
  }
  alignas(32) float scale[2][4][kSpan];
  for (int64_t s0 = 0; s0 < n_blocks; s0 += kSpan) {
    const int64_t s1 = n_blocks - s0 < kSpan ? n_blocks : s0 + kSpan;
    for (int64_t b0 = s0; b0 < s1; b0 += kChunk) {
      const int64_t n = s1 - b0 < kChunk ? s1 - b0 : kChunk;
      const __m256 wsc0 = chunk_w(ws0, b0, n), wsc1 = chunk_w(ws1, b0, n);
      for (int t = 0; t < 4; ++t) {
        const ChunkX cx = chunk_x(xs[t], xo[t], b0, n);
        corr[0][t] = apply_chunk(wsc0, cx, &scale[0][t][b0 - s0], corr[0][t]);
        corr[1][t] = apply_chunk(wsc1, cx, &scale[1][t][b0 - s0], corr[1][t]);
      }
    }
    int64_t b = s0;
    for (; b + 1 < s1; b += 2) {
      const int64_t k = b - s0;
      __m256i e0, o0, e1, o1;
      unpack_pair(w0, b, e0, o0);
      unpack_pair(w1, b, e1, o1);
      for (int t = 0; t < 4; ++t) {
        const __m256i x0 = load_x(xq[t], b), x1 = load_x(xq[t], b + 1);
        acc(0, t) = block_step(e0, x0, &scale[0][t][k], acc(0, t));
        acc(0, t) = block_step(o0, x1, &scale[0][t][k + 1], acc(0, t));
        acc(1, t) = block_step(e1, x0, &scale[1][t][k], acc(1, t));
        acc(1, t) = block_step(o1, x1, &scale[1][t][k + 1], acc(1, t));
      }
    }
    if (b < s1) {
      const int64_t k = b - s0;
      const __m256i n0 = unpack_single(w0, b), n1 = unpack_single(w1, b);
      for (int t = 0; t < 4; ++t) {
        const __m256i x0 = load_x(xq[t], b);
        acc(0, t) = block_step(n0, x0, &scale[0][t][k], acc(0, t));
        acc(1, t) = block_step(n1, x0, &scale[1][t][k], acc(1, t));
      }
    }
  }
  for (int r = 0; r < 2; ++r) {
    for (int t = 0; t < 4; ++t) out[r * 4 + t] = hsum256(acc(r, t)) - hsum256(corr[r][t]);
  }
}

// ---- AVX-512 VNNI ----

// Two 32-byte activation blocks as one vector: a in lanes 0-7, b in 8-15.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) inline __m512i
x_blocks(const int8_t* xq, int64_t a, int64_t b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load_x(xq, a)), load_x(xq, b), 1);
}

// acc + float(nibbles . x per lane) * scale.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) inline __m512
vnni_step(__m512i nibbles, __m512i x, __m512 scale, __m512 acc) {
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles, x);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scale, acc);
}

// acc + (float(lo . x_lo) * s_lo + float(hi . x_hi) * s_hi): the two halves
// of a load are summed first, so the chain through acc is one addition per
// load (decode runs one row at a time, and two dependent FMAs per load
// would bound it by their latency).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) inline __m512
vnni_pair_step(__m512i lo, __m512i x_lo, __m512 s_lo, __m512i hi, __m512i x_hi, __m512 s_hi,
               __m512 acc) {
  const __m512i sum_lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, x_lo);
  const __m512i sum_hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, x_hi);
  const __m512 part = _mm512_mul_ps(_mm512_cvtepi32_ps(sum_lo), s_lo);
  return _mm512_add_ps(acc, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum_hi), s_hi, part));
}

// R rows (w[r], scales ws[r]) x N tokens: out[r * N + t]. As rows_avx2:
// the combined scales of a span first, then its blocks, four at a time,
// then a last pair and a lone block where the row's end leaves them.
template <int R, int N>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) void tile_vnni(
    const uint8_t* const* w, const uint16_t* const* ws, const int8_t* const* xq,
    const float* const* xs, const int32_t* const* xo, int64_t padded, float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  __m512 acc[R][N];
  __m256 corr[R][N];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < N; ++t) {
      acc[r][t] = _mm512_setzero_ps();
      corr[r][t] = _mm256_setzero_ps();
    }
  }
  alignas(64) float scale[R][N][kSpan];
  const __m512i mask = _mm512_set1_epi8(0x0F);
  for (int64_t s0 = 0; s0 < n_blocks; s0 += kSpan) {
    const int64_t s1 = n_blocks - s0 < kSpan ? n_blocks : s0 + kSpan;
    for (int64_t b0 = s0; b0 < s1; b0 += kChunk) {
      const int64_t n = s1 - b0 < kChunk ? s1 - b0 : kChunk;
      __m256 wsc[R];
      for (int r = 0; r < R; ++r) wsc[r] = chunk_w(ws[r], b0, n);
      for (int t = 0; t < N; ++t) {
        const ChunkX cx = chunk_x(xs[t], xo[t], b0, n);
        for (int r = 0; r < R; ++r) {
          corr[r][t] = apply_chunk(wsc[r], cx, &scale[r][t][b0 - s0], corr[r][t]);
        }
      }
    }
    int64_t b = s0;
    for (; b + 4 <= s1; b += 4) {
      const int64_t k = b - s0;
      __m512i x02[N], x13[N];
      for (int t = 0; t < N; ++t) {
        x02[t] = x_blocks(xq[t], b, b + 2);
        x13[t] = x_blocks(xq[t], b + 1, b + 3);
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* wr = w[r] + b * 16;
        _mm_prefetch(reinterpret_cast<const char*>(wr) + kPrefetchAhead, _MM_HINT_T0);
        const __m512i raw = _mm512_loadu_si512(wr);
        const __m512i lo = _mm512_and_si512(raw, mask);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        for (int t = 0; t < N; ++t) {
          const __m128 sc = _mm_load_ps(&scale[r][t][k]);
          acc[r][t] = vnni_pair_step(lo, x02[t], spread_pair<0, 2>(sc), hi, x13[t],
                                     spread_pair<1, 3>(sc), acc[r][t]);
        }
      }
    }
    if (b + 2 <= s1) {  // a last pair: the upper halves stay zero
      const int64_t k = b - s0;
      for (int r = 0; r < R; ++r) {
        __m256i even, odd;
        unpack_pair(w[r], b, even, odd);
        for (int t = 0; t < N; ++t) {
          acc[r][t] =
              vnni_pair_step(_mm512_zextsi256_si512(even), _mm512_zextsi256_si512(load_x(xq[t], b)),
                             _mm512_set1_ps(scale[r][t][k]), _mm512_zextsi256_si512(odd),
                             _mm512_zextsi256_si512(load_x(xq[t], b + 1)),
                             _mm512_set1_ps(scale[r][t][k + 1]), acc[r][t]);
        }
      }
      b += 2;
    }
    if (b < s1) {  // the unpaired last block
      const int64_t k = b - s0;
      for (int r = 0; r < R; ++r) {
        const __m512i nibbles = _mm512_zextsi256_si512(unpack_single(w[r], b));
        for (int t = 0; t < N; ++t) {
          acc[r][t] = vnni_step(nibbles, _mm512_zextsi256_si512(load_x(xq[t], b)),
                                _mm512_set1_ps(scale[r][t][k]), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < N; ++t) {
      out[r * N + t] = _mm512_reduce_add_ps(acc[r][t]) - hsum256(corr[r][t]);
    }
  }
}

}  // namespace

void q4_block_offsets(const int8_t* xq, int64_t padded, int32_t* xo) {
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    int32_t s = 0;
    for (int j = 0; j < kQuantBlock; ++j) s += xq[b * kQuantBlock + j];
    xo[b] = 8 * s;
  }
}

void dot_q4(const uint8_t* w, const uint16_t* w_scales, const int8_t* const* xq,
            const float* const* xs, const int32_t* const* xo, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < n_x; ++t) out[t] = row_dot_scalar(w, w_scales, xq[t], xs[t], padded);
    return;
  }
  if (vnni_kernels()) {
    switch (n_x) {
      case 1:
        return tile_vnni<1, 1>(&w, &w_scales, xq, xs, xo, padded, out);
      case 2:
        return tile_vnni<1, 2>(&w, &w_scales, xq, xs, xo, padded, out);
      case 3:
        return tile_vnni<1, 3>(&w, &w_scales, xq, xs, xo, padded, out);
      default:
        return tile_vnni<1, 4>(&w, &w_scales, xq, xs, xo, padded, out);
    }
  }
  switch (n_x) {
    case 1:
      return tokens_avx2<1>(w, w_scales, xq, xs, xo, padded, out);
    case 2:
      return tokens_avx2<2>(w, w_scales, xq, xs, xo, padded, out);
    case 3:
      return tokens_avx2<3>(w, w_scales, xq, xs, xo, padded, out);
    default:
      return tokens_avx2<4>(w, w_scales, xq, xs, xo, padded, out);
  }
}

void dot_q4_rows(const uint8_t* w, int64_t row_stride, const uint16_t* w_scales, int64_t ws_stride,
                 int n_rows, const int8_t* xq, const float* xs, const int32_t* xo, int64_t padded,
                 float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int r = 0; r < n_rows; ++r) {
      out[r] = row_dot_scalar(w + r * row_stride, w_scales + r * ws_stride, xq, xs, padded);
    }
    return;
  }
  // One row at a time, in memory order (see rows_one_token in matmul.cpp).
  const bool vnni = vnni_kernels();
  for (int r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_stride;
    const uint16_t* scales = w_scales + r * ws_stride;
    if (vnni) {
      tile_vnni<1, 1>(&row, &scales, &xq, &xs, &xo, padded, out + r);
    } else {
      rows_avx2<1>(row, row_stride, scales, ws_stride, xq, xs, xo, padded, out + r);
    }
  }
}

void dot_q4_2x4(const uint8_t* w0, const uint8_t* w1, const uint16_t* ws0, const uint16_t* ws1,
                const int8_t* const* xq, const float* const* xs, const int32_t* const* xo,
                int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < 4; ++t) {
      out[t] = row_dot_scalar(w0, ws0, xq[t], xs[t], padded);
      out[4 + t] = row_dot_scalar(w1, ws1, xq[t], xs[t], padded);
    }
    return;
  }
  if (vnni_kernels()) {
    const uint8_t* const rows[2] = {w0, w1};
    const uint16_t* const scales[2] = {ws0, ws1};
    return tile_vnni<2, 4>(rows, scales, xq, xs, xo, padded, out);
  }
  two_by_four_avx2(w0, w1, ws0, ws1, xq, xs, xo, padded, out);
}

}  // namespace r1::kernels::cpu
