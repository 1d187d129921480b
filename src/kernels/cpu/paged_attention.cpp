// Paged attention with an online softmax. Work items are (token, kv head)
// pairs. The context is taken in chunks of up to kChunk positions that do
// not cross a cache block. The CPU cache stores K transposed within a block
// ([n_blocks, n_kv_heads, head_dim, block_size]), so the chunk's scores of
// a query head are kChunk lanes of FMAs over head_dim broadcast query
// values, with no horizontal sums, and the rows of K loaded once serve up
// to 6 (AVX2) or 8 (AVX-512) query heads of the kv head (GQA). Each head's running max,
// denominator and accumulator are rescaled at most once per chunk; then the
// chunk's V rows (V is stored as the reference's, [n_blocks, block_size,
// n_kv_heads, head_dim]) are read once and added into every head's
// accumulator. The vector bodies (AVX-512, AVX2, scalar) are picked per
// call from active_isa(); a token's result depends only on its own context,
// not on the batch around it or the thread that computes it. The cache
// holds f32 or bf16 (half the bytes to read at long contexts); every body
// is a template over the element type, and a bf16 value is widened to f32
// as it is loaded, so both compute the same arithmetic on the stored values.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {

constexpr int kChunk = 16;  // context positions per chunk

// Index of the sequence that owns token t (query_start is ascending).
int32_t seq_of_token(const AttentionBatch& batch, int32_t t) {
  const int32_t* end = batch.query_start + batch.n_seqs + 1;
  return static_cast<int32_t>(std::upper_bound(batch.query_start, end, t) - batch.query_start) - 1;
}

// scores[g * kChunk + i] = scale * (q_g . k_i) for i < kChunk (q_g = q0 +
// g * d), K given transposed: element j of position i at kt[j * stride + i].
// All kChunk lanes are computed; the caller uses the chunk's first n.
template <typename T>
using ScoreFn = void (*)(const float* q0, int64_t group, int64_t d, const T* kt, int64_t stride,
                         float scale, float* scores);
// acc_g += sum over i of w[g * kChunk + i] * v_i (acc_g = acc + g * d).
template <typename T>
using AccumulateFn = void (*)(float* acc, int64_t group, int64_t d, const T* const* v, int n,
                              const float* w);

// A cache element as f32; 8 and 16 of them from a row.
inline float to_f32(float x) {
  return x;
}
inline float to_f32(uint16_t x) {
  return bf16_to_f32(x);
}
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  return widen_bf16x8(p);
}
// Sixteen bf16 values from one 32-byte load as f32: `even` gets elements
// 0, 2, .., 14 and `odd` 1, 3, .., 15. A 32-bit lane holds an even element
// in its low half and the next odd one in its high half, so a shift and a
// mask widen them, where widen_bf16x8 takes a load, a zero-extension and a
// shift per eight.
__attribute__((target("avx2,fma"))) inline void split_bf16x16(const uint16_t* p, __m256& even,
                                                              __m256& odd) {
  const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
  odd = _mm256_castsi256_ps(
      _mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// The inverse of the split: from even = elements 0, 2, .., 14 and odd = 1,
// 3, .., 15 to lo = elements 0..7 and hi = 8..15.
__attribute__((target("avx2,fma"))) inline void interleave(__m256& lo, __m256& hi) {
  const __m256 a = _mm256_unpacklo_ps(lo, hi);  // 0 1 2 3 | 8 9 10 11
  const __m256 b = _mm256_unpackhi_ps(lo, hi);  // 4 5 6 7 | 12 13 14 15
  lo = _mm256_permute2f128_ps(a, b, 0x20);
  hi = _mm256_permute2f128_ps(a, b, 0x31);
}

#define R1_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
R1_AVX512 inline __m512 load16(const float* p) {
  return _mm512_loadu_ps(p);
}
R1_AVX512 inline __m512 load16(const uint16_t* p) {
  return widen_bf16x16(p);
}
R1_AVX512 inline __m512 load16(__mmask16 m, const float* p) {
  return _mm512_maskz_loadu_ps(m, p);
}
R1_AVX512 inline __m512 load16(__mmask16 m, const uint16_t* p) {
  return widen_bf16x16(p, m);
}

// tile(std::integral_constant<int, H>{}, g) for the group's query heads in
// tiles of Max heads from head g on, the last tile smaller: the score
// bodies' register tiles are compile-time sizes.
template <int H, typename Tile>
inline void tile_of(int64_t n, int64_t g, Tile& tile) {
  if (n == H) {
    tile(std::integral_constant<int, H>{}, g);
  } else if constexpr (H > 1) {
    tile_of<H - 1>(n, g, tile);
  }
}
template <int Max, typename Tile>
inline void for_head_tiles(int64_t group, Tile&& tile) {
  for (int64_t g = 0; g < group; g += Max) tile_of<Max>(std::min<int64_t>(Max, group - g), g, tile);
}

// v[i] = exp(v[i] - m) for i < n; returns their sum.
using ExpFn = float (*)(float* v, int n, float m);

float exp_shifted(float* v, int n, float m) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - m);
    sum += v[i];
  }
  return sum;
}

// The scalar path: every head's 16 lanes, one column of K at a time.
template <typename T>
void scores_scalar(const float* q0, int64_t group, int64_t d, const T* kt, int64_t stride,
                   float scale, float* scores) {
  for (int64_t g = 0; g < group; ++g) {
    float acc[kChunk] = {};
    for (int64_t j = 0; j < d; ++j) {
      const float qj = q0[g * d + j];
      for (int i = 0; i < kChunk; ++i) acc[i] += qj * to_f32(kt[j * stride + i]);
    }
    for (int i = 0; i < kChunk; ++i) scores[g * kChunk + i] = acc[i] * scale;
  }
}

template <typename T>
void accumulate_scalar(float* acc, int64_t group, int64_t d, const T* const* v, int n,
                       const float* w) {
  for (int64_t g = 0; g < group; ++g) {
    for (int i = 0; i < n; ++i) {
      for (int64_t j = 0; j < d; ++j) acc[g * d + j] += w[g * kChunk + i] * to_f32(v[i][j]);
    }
  }
}

// H heads x C vectors of 8 columns (from column j) of the accumulators
// stay in registers while the chunk's V rows pass: per position, H
// broadcasts and C loads feed H * C FMAs. (One 8-column vector at a time
// took a load and a broadcast per FMA, so the load ports set the pace.)
// Each accumulator element sees the same FMAs in the same order either way.
template <int H, int C, typename T>
__attribute__((target("avx2,fma"))) inline void accumulate_tile_avx2(float* acc, int64_t d,
                                                                     int64_t j, const T* const* v,
                                                                     int n, const float* w) {
  // Named accumulators, as in scores_tile_avx2 (an array was stored on
  // every position).
  static_assert((H == 1 || H == 2) && (C == 1 || C == 4));
  float* a0 = acc + j;
  float* a1 = H > 1 ? acc + d + j : a0;  // the second head's, when there is one
  __m256 s00 = _mm256_loadu_ps(a0), s01 = s00, s02 = s00, s03 = s00;
  __m256 s10 = s00, s11 = s00, s12 = s00, s13 = s00;
  if constexpr (C > 1) {
    s01 = _mm256_loadu_ps(a0 + 8);
    s02 = _mm256_loadu_ps(a0 + 16);
    s03 = _mm256_loadu_ps(a0 + 24);
  }
  if constexpr (H > 1) {
    s10 = _mm256_loadu_ps(a1);
    if constexpr (C > 1) {
      s11 = _mm256_loadu_ps(a1 + 8);
      s12 = _mm256_loadu_ps(a1 + 16);
      s13 = _mm256_loadu_ps(a1 + 24);
    }
  }
  for (int i = 0; i < n; ++i) {
    const __m256 w0 = _mm256_broadcast_ss(w + i);
    const __m256 w1 = H > 1 ? _mm256_broadcast_ss(w + kChunk + i) : w0;
#define R1_COLUMN(c)                                             \
  if constexpr (C > c) {                                         \
    const __m256 vc = load8(v[i] + j + 8 * (c));                 \
    s0##c = _mm256_fmadd_ps(w0, vc, s0##c);                      \
    if constexpr (H > 1) s1##c = _mm256_fmadd_ps(w1, vc, s1##c); \
  }
    R1_COLUMN(0) R1_COLUMN(1) R1_COLUMN(2) R1_COLUMN(3)
#undef R1_COLUMN
  }
  _mm256_storeu_ps(a0, s00);
  if constexpr (C > 1) {
    _mm256_storeu_ps(a0 + 8, s01);
    _mm256_storeu_ps(a0 + 16, s02);
    _mm256_storeu_ps(a0 + 24, s03);
  }
  if constexpr (H > 1) {
    _mm256_storeu_ps(a1, s10);
    if constexpr (C > 1) {
      _mm256_storeu_ps(a1 + 8, s11);
      _mm256_storeu_ps(a1 + 16, s12);
      _mm256_storeu_ps(a1 + 24, s13);
    }
  }
}

template <typename T>
__attribute__((target("avx2,fma"))) void accumulate_avx2(float* acc, int64_t group, int64_t d,
                                                         const T* const* v, int n, const float* w) {
  const int64_t d32 = d / 32 * 32;
  int64_t g = 0;
  for (; g + 2 <= group; g += 2) {
    for (int64_t j = 0; j < d32; j += 32) {
      accumulate_tile_avx2<2, 4>(acc + g * d, d, j, v, n, w + g * kChunk);
    }
  }
  if (g < group) {
    for (int64_t j = 0; j < d32; j += 32) {
      accumulate_tile_avx2<1, 4>(acc + g * d, d, j, v, n, w + g * kChunk);
    }
  }
  for (g = 0; g < group; ++g) {
    float* a = acc + g * d;
    const float* wg = w + g * kChunk;
    for (int64_t j = d32; j + 8 <= d; j += 8) accumulate_tile_avx2<1, 1>(a, d, j, v, n, wg);
    for (int64_t j = d / 8 * 8; j < d; ++j) {
      for (int i = 0; i < n; ++i) a[j] += wg[i] * to_f32(v[i][j]);
    }
  }
}

// H query heads (from q0, d apart) x the chunk's 16 positions: 2H
// accumulators, and per column j two loads of K (16 positions) and H
// broadcasts of q feed 2H FMAs. The accumulators are named variables: in an
// array GCC stored every one of them on every j (a store per FMA, which
// set the pace).
//
// A bf16 K column is one 32-byte load split in two (split_bf16x16): k0
// holds the even positions and k1 the odd ones, and the stores put them
// back in order. Each score still sees the same FMAs in the same order.
template <int H, typename T>
__attribute__((target("avx2,fma"))) inline void scores_tile_avx2(const float* q0, int64_t d,
                                                                 const T* kt, int64_t stride,
                                                                 float scale, float* scores) {
  static_assert(H >= 1 && H <= 6);
  constexpr bool kSplit = std::is_same_v<T, uint16_t>;
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
         a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  for (int64_t j = 0; j < d; ++j) {
    __m256 k0, k1;
    if constexpr (kSplit) {
      split_bf16x16(kt + j * stride, k0, k1);
    } else {
      k0 = load8(kt + j * stride);
      k1 = load8(kt + j * stride + 8);
    }
#define R1_HEAD(h)                                         \
  if constexpr (H > h) {                                   \
    const __m256 qj = _mm256_broadcast_ss(q0 + (h)*d + j); \
    a##h##0 = _mm256_fmadd_ps(qj, k0, a##h##0);            \
    a##h##1 = _mm256_fmadd_ps(qj, k1, a##h##1);            \
  }
    R1_HEAD(0) R1_HEAD(1) R1_HEAD(2) R1_HEAD(3) R1_HEAD(4) R1_HEAD(5)
#undef R1_HEAD
  }
  const __m256 sc = _mm256_set1_ps(scale);
  const __m256 out[6][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
  for (int h = 0; h < H; ++h) {
    __m256 lo = out[h][0], hi = out[h][1];
    if constexpr (kSplit) interleave(lo, hi);
    _mm256_storeu_ps(scores + h * kChunk, _mm256_mul_ps(lo, sc));
    _mm256_storeu_ps(scores + h * kChunk + 8, _mm256_mul_ps(hi, sc));
  }
}

// Heads in tiles of up to six (12 accumulators, two K vectors and a
// broadcast in the 16 registers).
template <typename T>
__attribute__((target("avx2,fma"))) void scores_avx2(const float* q0, int64_t group, int64_t d,
                                                     const T* kt, int64_t stride, float scale,
                                                     float* scores) {
  static_assert(kChunk == 16);
  for_head_tiles<6>(
      group, [&](auto h, int64_t g) __attribute__((target("avx2,fma"))) {
        scores_tile_avx2<decltype(h)::value>(q0 + g * d, d, kt, stride, scale, scores + g * kChunk);
      });
}

// exp(x) for x <= 0, 8 lanes: exp_shifted_avx512's range reduction and
// polynomial, 2^k built in the exponent bits. Below -87 (where 2^k would
// leave the normal range) the result is 0; exp there is under 2e-38.
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive_avx2(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  // A NaN x stays NaN (max_ps returns its second operand, x, for it).
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_andnot_ps(tiny, e), x, nan);
}

// The online softmax's step for a chunk, every head of the group: the
// running max, denominator and accumulator of each head, updated by its
// chunk scores (scores[g * kChunk + i], i < n; replaced by their
// exponentials). ChunkSoftmaxFn is the signature; softmax_chunk<Exp> is
// the portable body over an ExpFn.
using ChunkSoftmaxFn = void (*)(float* scores, int64_t group, int n, float* run_max, float* run_sum,
                                float* acc, int64_t d);

// Head g's running max becomes m when that is larger: its denominator and
// accumulator (d values) are scaled by exp(old max - m).
inline void raise_max(int64_t g, float m, float* run_max, float* run_sum, float* acc, int64_t d) {
  if (!(m > run_max[g])) return;
  const float correction = std::exp(run_max[g] - m);
  run_sum[g] *= correction;
  float* a = acc + g * d;
#pragma omp simd
  for (int64_t i = 0; i < d; ++i) a[i] *= correction;
  run_max[g] = m;
}

template <ExpFn Exp>
void softmax_chunk(float* scores, int64_t group, int n, float* run_max, float* run_sum, float* acc,
                   int64_t d) {
  for (int64_t g = 0; g < group; ++g) {
    float* sc = scores + g * kChunk;
    const float m = std::max(run_max[g], *std::max_element(sc, sc + n));
    raise_max(g, m, run_max, run_sum, acc, d);
    run_sum[g] += Exp(sc, n, m);
  }
}

// The AVX2 body: a head's 16 scores stay in two vectors from the max to
// the sum, and the heads' steps are independent of each other, so they
// overlap (the portable body's scalar max and sum are each a chain of
// dependent operations; with them the step was about a third of a chunk's
// time with the KV in cache).
// Lanes from n on count as -inf (an exponential of 0).
__attribute__((target("avx2,fma"))) void softmax_chunk_avx2(float* scores, int64_t group, int n,
                                                            float* run_max, float* run_sum,
                                                            float* acc, int64_t d) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 in0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
  const __m256 in1 = _mm256_castsi256_ps(
      _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_add_epi32(lane, _mm256_set1_epi32(8))));
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  for (int64_t g = 0; g < group; ++g) {
    float* sc = scores + g * kChunk;
    const __m256 s0 = _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(sc), in0);
    const __m256 s1 = _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(sc + 8), in1);
    const __m256 both = _mm256_max_ps(s0, s1);
    __m128 mx = _mm_max_ps(_mm256_castps256_ps128(both), _mm256_extractf128_ps(both, 1));
    mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
    mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
    const float m = std::max(run_max[g], _mm_cvtss_f32(mx));
    raise_max(g, m, run_max, run_sum, acc, d);
    const __m256 mv = _mm256_set1_ps(m);
    const __m256 e0 = exp_nonpositive_avx2(_mm256_sub_ps(s0, mv));
    const __m256 e1 = exp_nonpositive_avx2(_mm256_sub_ps(s1, mv));
    _mm256_storeu_ps(sc, e0);
    _mm256_storeu_ps(sc + 8, e1);
    run_sum[g] += hsum256(_mm256_add_ps(e0, e1));
  }
}

// H query heads x the chunk's 16 positions, one vector each: per column j
// one load of K and H broadcasts feed H FMAs.
template <int H, typename T>
R1_AVX512 inline void scores_tile_avx512(const float* q0, int64_t d, const T* kt, int64_t stride,
                                         float scale, float* scores) {
  __m512 a[H];
  for (int h = 0; h < H; ++h) a[h] = _mm512_setzero_ps();
  for (int64_t j = 0; j < d; ++j) {
    const __m512 k = load16(kt + j * stride);
    for (int h = 0; h < H; ++h) a[h] = _mm512_fmadd_ps(_mm512_set1_ps(q0[h * d + j]), k, a[h]);
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int h = 0; h < H; ++h) _mm512_storeu_ps(scores + h * kChunk, _mm512_mul_ps(a[h], sc));
}

// Heads in tiles of up to eight (eight chains of dependent FMAs cover the
// FMA latency at two per cycle).
template <typename T>
R1_AVX512 void scores_avx512(const float* q0, int64_t group, int64_t d, const T* kt, int64_t stride,
                             float scale, float* scores) {
  for_head_tiles<8>(group, [&](auto h, int64_t g) R1_AVX512 {
    scores_tile_avx512<decltype(h)::value>(q0 + g * d, d, kt, stride, scale, scores + g * kChunk);
  });
}

// v[i] = exp(v[i] - m) for i < n (every v[i] <= m); returns their sum.
// Range reduction by ln 2 and a degree-6 polynomial (the Cephes expf
// coefficients; relative error about 2e-7), scaled by 2^n with vscalefps.
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) float exp_shifted_avx512(float* v,
                                                                                       int n,
                                                                                       float m) {
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, v), _mm512_set1_ps(m));
  // exp(-104) is 0 in f32; max returns its second operand for a NaN x, so a
  // NaN stays NaN as with std::exp.
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 e = _mm512_maskz_scalef_ps(mask, p, k);
  _mm512_mask_storeu_ps(v, mask, e);
  return _mm512_reduce_add_ps(e);
}

template <typename T>
R1_AVX512 void accumulate_avx512(float* acc, int64_t group, int64_t d, const T* const* v, int n,
                                 const float* w) {
  if (d == 128) {
    // Two heads' accumulators (16 registers) stay put while the chunk's V
    // rows pass: each V vector is loaded once for both, each weight
    // broadcast once.
    int64_t g = 0;
    for (; g + 2 <= group; g += 2) {
      float* a0 = acc + g * d;
      float* a1 = a0 + d;
      const float* w0 = w + g * kChunk;
      const float* w1 = w0 + kChunk;
      __m512 s0[8], s1[8];
      for (int k = 0; k < 8; ++k) {
        s0[k] = _mm512_loadu_ps(a0 + 16 * k);
        s1[k] = _mm512_loadu_ps(a1 + 16 * k);
      }
      for (int i = 0; i < n; ++i) {
        const __m512 x0 = _mm512_set1_ps(w0[i]), x1 = _mm512_set1_ps(w1[i]);
        for (int k = 0; k < 8; ++k) {
          const __m512 vk = load16(v[i] + 16 * k);
          s0[k] = _mm512_fmadd_ps(x0, vk, s0[k]);
          s1[k] = _mm512_fmadd_ps(x1, vk, s1[k]);
        }
      }
      for (int k = 0; k < 8; ++k) {
        _mm512_storeu_ps(a0 + 16 * k, s0[k]);
        _mm512_storeu_ps(a1 + 16 * k, s1[k]);
      }
    }
    if (g == group) return;
    acc += g * d;
    w += g * kChunk;
    group -= g;
  }
  if (d % 128 == 0) {
    // 128 columns of a head's accumulator stay in eight registers while the
    // chunk's V rows pass, so each weight is broadcast once per 128 columns.
    for (int64_t g = 0; g < group; ++g) {
      const float* wg = w + g * kChunk;
      for (int64_t j = 0; j < d; j += 128) {
        float* a = acc + g * d + j;
        __m512 s[8];
        for (int k = 0; k < 8; ++k) s[k] = _mm512_loadu_ps(a + 16 * k);
        for (int i = 0; i < n; ++i) {
          const __m512 wi = _mm512_set1_ps(wg[i]);
          for (int k = 0; k < 8; ++k) {
            s[k] = _mm512_fmadd_ps(wi, load16(v[i] + j + 16 * k), s[k]);
          }
        }
        for (int k = 0; k < 8; ++k) _mm512_storeu_ps(a + 16 * k, s[k]);
      }
    }
    return;
  }
  for (int64_t g = 0; g < group; ++g) {
    float* a = acc + g * d;
    const float* wg = w + g * kChunk;
    for (int64_t j = 0; j < d; j += 16) {
      const __mmask16 m =
          d - j >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (d - j)) - 1);
      __m512 s = _mm512_maskz_loadu_ps(m, a + j);
      for (int i = 0; i < n; ++i) {
        s = _mm512_fmadd_ps(_mm512_set1_ps(wg[i]), load16(m, v[i] + j), s);
      }
      _mm512_mask_storeu_ps(a + j, m, s);
    }
  }
}

// Asks for the next chunk's K (its columns of the head's transposed block:
// head_dim runs of n elements, bs apart; n <= bs - off) and V rows while
// this one computes. A block's K for one head is a few KB on a page of its
// own, and the hardware prefetchers, which stop at page boundaries, left
// every chunk waiting on its first lines.
template <typename T>
inline void prefetch_chunk(const KvLayerViewOf<T>& kv, int64_t block, int64_t kvh, int64_t off,
                           int64_t n) {
  const int64_t d = kv.head_dim, n_kv = kv.n_kv_heads, bs = kv.block_size;
  const T* kt = kv.k + (block * n_kv + kvh) * d * bs + off;
  if (n == bs) {
    // Whole rows: the head's block is one span.
    const char* k = reinterpret_cast<const char*>(kt);
    const int64_t k_bytes = d * bs * static_cast<int64_t>(sizeof(T));
    for (int64_t b = 0; b < k_bytes; b += 64) _mm_prefetch(k + b, _MM_HINT_T0);
  } else {
    // The first and last element of each run (a run spans at most two
    // lines while it is under 64 bytes).
    for (int64_t j = 0; j < d; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(kt + j * bs), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(kt + j * bs + n - 1), _MM_HINT_T0);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const char* v = reinterpret_cast<const char*>(kv.v + ((block * bs + off + i) * n_kv + kvh) * d);
    for (int64_t b = 0; b < d * static_cast<int64_t>(sizeof(T)); b += 64) {
      _mm_prefetch(v + b, _MM_HINT_T0);
    }
  }
}

template <typename T>
void attention(const float* q, const KvLayerViewOf<T>& kv, const AttentionBatch& batch,
               int64_t n_heads, float scale, float* out, ThreadPool& pool) {
  const int64_t d = kv.head_dim;
  const int64_t n_kv = kv.n_kv_heads;
  const int64_t group = n_heads / n_kv;
  const int64_t kv_row = n_kv * d;
  const int64_t bs = kv.block_size;
  const int32_t n_tokens = batch.query_start[batch.n_seqs];
  ScoreFn<T> score_fn = scores_scalar<T>;
  AccumulateFn<T> accumulate_fn = accumulate_scalar<T>;
  ChunkSoftmaxFn softmax_fn = softmax_chunk<exp_shifted>;
  if (active_isa() == Isa::kAvx512) {
    score_fn = scores_avx512<T>;
    softmax_fn = softmax_chunk<exp_shifted_avx512>;
    accumulate_fn = accumulate_avx512<T>;
  } else if (active_isa() == Isa::kAvx2) {
    score_fn = scores_avx2<T>;
    softmax_fn = softmax_chunk_avx2;
    accumulate_fn = accumulate_avx2<T>;
  }
  pool.parallel_for(
      static_cast<size_t>(n_tokens) * static_cast<size_t>(n_kv),
      [&](size_t begin, size_t end, int) {
        thread_local std::vector<float> acc, run_max, run_sum, scores;
        thread_local std::vector<T> k_pad;  // a short chunk's K, [d, kChunk], zero past n
        acc.resize(static_cast<size_t>(group * d));
        run_max.resize(static_cast<size_t>(group));
        run_sum.resize(static_cast<size_t>(group));
        scores.resize(static_cast<size_t>(group * kChunk));
        k_pad.resize(static_cast<size_t>(d * kChunk));
        const T* v_rows[kChunk];
        for (size_t item = begin; item < end; ++item) {
          const int32_t t = static_cast<int32_t>(item / static_cast<size_t>(n_kv));
          const int64_t kvh = static_cast<int64_t>(item % static_cast<size_t>(n_kv));
          const int32_t s = seq_of_token(batch, t);
          const int32_t* table =
              batch.block_tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
          const int64_t n_ctx = static_cast<int64_t>(batch.positions[t]) + 1;
          const float* q0 = q + (static_cast<int64_t>(t) * n_heads + kvh * group) * d;
          std::fill(acc.begin(), acc.end(), 0.0f);
          std::fill(run_max.begin(), run_max.end(), -INFINITY);
          std::fill(run_sum.begin(), run_sum.end(), 0.0f);
          // Chunks of up to kChunk positions within one block: position
          // p0 + i is row off + i of the sequence's block `blk`.
          int64_t blk = 0, off = 0;
          for (int64_t p0 = 0; p0 < n_ctx;) {
            const int n = static_cast<int>(std::min({int64_t{kChunk}, bs - off, n_ctx - p0}));
            const int64_t block = table[blk];
            // This kv head's transposed K in the block, from column `off`.
            const T* kt = kv.k + (block * n_kv + kvh) * d * bs + off;
            for (int i = 0; i < n; ++i)
              v_rows[i] = kv.v + (block * bs + off + i) * kv_row + kvh * d;
            if (n == kChunk) {
              score_fn(q0, group, d, kt, bs, scale, scores.data());
            } else {
              // A short chunk (the context's end, or a block under kChunk
              // positions): its columns, zero-padded, so the vector bodies
              // never read past the block.
              for (int64_t j = 0; j < d; ++j) {
                for (int i = 0; i < kChunk; ++i)
                  k_pad[j * kChunk + i] = i < n ? kt[j * bs + i] : T{};
              }
              score_fn(q0, group, d, k_pad.data(), kChunk, scale, scores.data());
            }
            p0 += n;
            off += n;
            if (off == bs) {
              off = 0;
              ++blk;
            }
            if (p0 < n_ctx) {
              prefetch_chunk(kv, table[blk], kvh, off,
                             std::min({int64_t{kChunk}, bs - off, n_ctx - p0}));
            }
            softmax_fn(scores.data(), group, n, run_max.data(), run_sum.data(), acc.data(), d);
            accumulate_fn(acc.data(), group, d, v_rows, n, scores.data());
          }
          for (int64_t g = 0; g < group; ++g) {
            float* o = out + (static_cast<int64_t>(t) * n_heads + kvh * group + g) * d;
            const float inv = 1.0f / run_sum[g];
            for (int64_t i = 0; i < d; ++i) o[i] = acc[g * d + i] * inv;
          }
        }
      });
}

}  // namespace

void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool) {
  attention(q, kv, batch, n_heads, scale, out, pool);
}

void paged_attention(const float* q, const KvLayerViewBf16& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool) {
  attention(q, kv, batch, n_heads, scale, out, pool);
}

#undef R1_AVX512

}  // namespace r1::kernels::cpu
