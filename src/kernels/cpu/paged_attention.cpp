// Paged attention with an online softmax. Work items are (token, kv head)
// pairs. The context is taken in chunks of up to kChunk positions: the K
// rows of a chunk are read once for all `group` query heads of the kv head
// (GQA) to give a chunk of scores per head; each head's running max,
// denominator and accumulator are rescaled at most once per chunk; then the
// chunk's V rows are read once and added into every head's accumulator.
// The vector bodies (AVX-512, AVX2, scalar) are picked per call from
// active_isa(); a token's result depends only on its own context, not on
// the batch around it or the thread that computes it. The cache holds f32
// or bf16 (half the bytes to read at long contexts); every body is a
// template over the element type, and a bf16 row is widened to f32 as it
// is loaded, so both compute the same arithmetic on the stored values.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
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

// scores[g * kChunk + i] = scale * (q_g . k_i) for the chunk's n rows
// (q_g = q0 + g * d).
template <typename T>
using ScoreFn = void (*)(const float* q0, int64_t group, int64_t d, const T* const* k, int n,
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
#define R1_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
R1_AVX512 inline __m512 load16(const float* p) {
  return _mm512_loadu_ps(p);
}
R1_AVX512 inline __m512 load16(const uint16_t* p) {
  const __m512i wide =
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
R1_AVX512 inline __m512 load16(__mmask16 m, const float* p) {
  return _mm512_maskz_loadu_ps(m, p);
}
R1_AVX512 inline __m512 load16(__mmask16 m, const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
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

// The scalar and AVX2 paths: dot_f32 per (head, position), which takes the
// active ISA's body.
// (bf16 rows: dot_bf16, the same loop over widened values.)
inline float dot_row(const float* q, const float* k, int64_t d) {
  return dot_f32(q, k, d);
}
inline float dot_row(const float* q, const uint16_t* k, int64_t d) {
  return dot_bf16(k, q, d);
}

template <typename T>
void scores_dot(const float* q0, int64_t group, int64_t d, const T* const* k, int n, float scale,
                float* scores) {
  for (int64_t g = 0; g < group; ++g) {
    for (int i = 0; i < n; ++i) scores[g * kChunk + i] = dot_row(q0 + g * d, k[i], d) * scale;
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
  __m256 s[H][C];
  for (int h = 0; h < H; ++h) {
    for (int c = 0; c < C; ++c) s[h][c] = _mm256_loadu_ps(acc + h * d + j + 8 * c);
  }
  for (int i = 0; i < n; ++i) {
    __m256 wi[H];
    for (int h = 0; h < H; ++h) wi[h] = _mm256_broadcast_ss(w + h * kChunk + i);
    for (int c = 0; c < C; ++c) {
      const __m256 vc = load8(v[i] + j + 8 * c);
      for (int h = 0; h < H; ++h) s[h][c] = _mm256_fmadd_ps(wi[h], vc, s[h][c]);
    }
  }
  for (int h = 0; h < H; ++h) {
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(acc + h * d + j + 8 * c, s[h][c]);
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

// The lane sums of four AVX2 vectors, as [sum(a0), sum(a1), sum(a2), sum(a3)].
__attribute__((target("avx2,fma"))) inline __m128 sum4_avx2(__m256 a0, __m256 a1, __m256 a2,
                                                            __m256 a3) {
  const __m256 s01 = _mm256_hadd_ps(a0, a1);  // per 128-bit half: a0 a0 a1 a1
  const __m256 s23 = _mm256_hadd_ps(a2, a3);
  const __m256 s = _mm256_hadd_ps(s01, s23);  // per half: a0 a1 a2 a3
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// q . k over d columns as 8 lanes of partial sums; the columns past a
// multiple of 8 are added into lane 0.
template <typename T>
__attribute__((target("avx2,fma"))) inline __m256 dot_lanes_avx2(const float* q, const T* k,
                                                                 int64_t d) {
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= d; j += 16) {
    a = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8(k + j), a);
    b = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), load8(k + j + 8), b);
  }
  for (; j + 8 <= d; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8(k + j), a);
  float tail = 0.0f;
  for (; j < d; ++j) tail += q[j] * to_f32(k[j]);
  return _mm256_add_ps(_mm256_add_ps(a, b), _mm256_setr_ps(tail, 0, 0, 0, 0, 0, 0, 0));
}

// Four positions per pass, their sums reduced together (one horizontal
// reduction per four dot products instead of one each). Where d is a
// multiple of 16 the four dot products also share each load of q (ten
// loads per eight FMAs, not sixteen), with dot_lanes_avx2's arithmetic
// per position.
template <typename T>
__attribute__((target("avx2,fma"))) void scores_avx2(const float* q0, int64_t group, int64_t d,
                                                     const T* const* k, int n, float scale,
                                                     float* scores) {
  const __m128 sc = _mm_set1_ps(scale);
  for (int64_t g = 0; g < group; ++g) {
    const float* q = q0 + g * d;
    float* out = scores + g * kChunk;
    int i = 0;
    if (d % 16 == 0) {
      for (; i + 4 <= n; i += 4) {
        __m256 a[4], b[4];
        for (int p = 0; p < 4; ++p) a[p] = b[p] = _mm256_setzero_ps();
        for (int64_t j = 0; j < d; j += 16) {
          const __m256 qa = _mm256_loadu_ps(q + j), qb = _mm256_loadu_ps(q + j + 8);
          for (int p = 0; p < 4; ++p) {
            a[p] = _mm256_fmadd_ps(qa, load8(k[i + p] + j), a[p]);
            b[p] = _mm256_fmadd_ps(qb, load8(k[i + p] + j + 8), b[p]);
          }
        }
        // dot_lanes_avx2 adds a zero tail into lane 0 here: x + 0 is x.
        const __m128 s = sum4_avx2(_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1]),
                                   _mm256_add_ps(a[2], b[2]), _mm256_add_ps(a[3], b[3]));
        _mm_storeu_ps(out + i, _mm_mul_ps(s, sc));
      }
    }
    for (; i + 4 <= n; i += 4) {
      const __m128 s = sum4_avx2(dot_lanes_avx2(q, k[i], d), dot_lanes_avx2(q, k[i + 1], d),
                                 dot_lanes_avx2(q, k[i + 2], d), dot_lanes_avx2(q, k[i + 3], d));
      _mm_storeu_ps(out + i, _mm_mul_ps(s, sc));
    }
    for (; i < n; ++i) {
      const __m256 l = dot_lanes_avx2(q, k[i], d);
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(l), _mm256_extractf128_ps(l, 1));
      const __m128 t = _mm_add_ps(h, _mm_movehl_ps(h, h));
      out[i] = _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t))) * scale;
    }
  }
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

// v[i] = exp(v[i] - m) for i < n <= kChunk (every v[i] <= m); their sum.
__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float* v, int n, float m) {
  alignas(32) float buf[kChunk];
  for (int i = 0; i < kChunk; ++i) buf[i] = i < n ? v[i] - m : -INFINITY;
  const __m256 e0 = exp_nonpositive_avx2(_mm256_load_ps(buf));
  const __m256 e1 = exp_nonpositive_avx2(_mm256_load_ps(buf + 8));
  _mm256_store_ps(buf, e0);
  _mm256_store_ps(buf + 8, e1);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    v[i] = buf[i];
    sum += buf[i];
  }
  return sum;
}

// q . k over d columns, 16 lanes of partial sums (the lanes past d: 0).
template <typename T>
R1_AVX512 inline __m512 dot_lanes(const float* q, const T* k, int64_t d) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    a = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load16(k + j), a);
    b = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16), load16(k + j + 16), b);
  }
  for (; j < d; j += 16) {
    const __mmask16 m =
        d - j >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (d - j)) - 1);
    a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + j), load16(m, k + j), a);
  }
  return _mm512_add_ps(a, b);
}

// The lane sums of four vectors, as [sum(a0), sum(a1), sum(a2), sum(a3)].
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) inline __m128 sum4(__m512 a0,
                                                                                 __m512 a1,
                                                                                 __m512 a2,
                                                                                 __m512 a3) {
  // Per 128-bit lane: [a0 a1 a0 a1] partial sums, then [a0 a1 a2 a3].
  const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23));
  const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23));
  const __m512 s = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

template <typename T>
R1_AVX512 void scores_avx512(const float* q0, int64_t group, int64_t d, const T* const* k, int n,
                             float scale, float* scores) {
  const __m128 sc = _mm_set1_ps(scale);
  if (d == 128) {
    // The head's query stays in eight registers while the chunk's K rows
    // pass; two accumulators per position.
    for (int64_t g = 0; g < group; ++g) {
      __m512 qv[8];
      for (int c = 0; c < 8; ++c) qv[c] = _mm512_loadu_ps(q0 + g * d + 16 * c);
      auto dot128 = [&](const T* k) R1_AVX512 {
        __m512 a = _mm512_mul_ps(qv[0], load16(k));
        __m512 b = _mm512_mul_ps(qv[1], load16(k + 16));
        for (int c = 2; c < 8; c += 2) {
          a = _mm512_fmadd_ps(qv[c], load16(k + 16 * c), a);
          b = _mm512_fmadd_ps(qv[c + 1], load16(k + 16 * c + 16), b);
        }
        return _mm512_add_ps(a, b);
      };
      float* out = scores + g * kChunk;
      int i = 0;
      for (; i + 4 <= n; i += 4) {
        const __m128 s = sum4(dot128(k[i]), dot128(k[i + 1]), dot128(k[i + 2]), dot128(k[i + 3]));
        _mm_storeu_ps(out + i, _mm_mul_ps(s, sc));
      }
      for (; i < n; ++i) out[i] = _mm512_reduce_add_ps(dot128(k[i])) * scale;
    }
    return;
  }
  for (int64_t g = 0; g < group; ++g) {
    const float* q = q0 + g * d;
    float* out = scores + g * kChunk;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      const __m128 s = sum4(dot_lanes(q, k[i], d), dot_lanes(q, k[i + 1], d),
                            dot_lanes(q, k[i + 2], d), dot_lanes(q, k[i + 3], d));
      _mm_storeu_ps(out + i, _mm_mul_ps(s, sc));
    }
    for (; i < n; ++i) out[i] = _mm512_reduce_add_ps(dot_lanes(q, k[i], d)) * scale;
  }
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

template <typename T>
void attention(const float* q, const KvLayerViewOf<T>& kv, const AttentionBatch& batch,
               int64_t n_heads, float scale, float* out, ThreadPool& pool) {
  const int64_t d = kv.head_dim;
  const int64_t n_kv = kv.n_kv_heads;
  const int64_t group = n_heads / n_kv;
  const int64_t kv_row = n_kv * d;
  const int32_t n_tokens = batch.query_start[batch.n_seqs];
  ScoreFn<T> score_fn = scores_dot<T>;
  AccumulateFn<T> accumulate_fn = accumulate_scalar<T>;
  ExpFn exp_fn = exp_shifted;
  if (active_isa() == Isa::kAvx512) {
    score_fn = scores_avx512<T>;
    exp_fn = exp_shifted_avx512;
    accumulate_fn = accumulate_avx512<T>;
  } else if (active_isa() == Isa::kAvx2) {
    score_fn = scores_avx2<T>;
    exp_fn = exp_shifted_avx2;
    accumulate_fn = accumulate_avx2<T>;
  }
  pool.parallel_for(
      static_cast<size_t>(n_tokens) * static_cast<size_t>(n_kv),
      [&](size_t begin, size_t end, int) {
        thread_local std::vector<float> acc, run_max, run_sum, scores;
        acc.resize(static_cast<size_t>(group * d));
        run_max.resize(static_cast<size_t>(group));
        run_sum.resize(static_cast<size_t>(group));
        scores.resize(static_cast<size_t>(group * kChunk));
        const T* k_rows[kChunk];
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
          // Position p0 + i is row `off` of the sequence's block `blk`; both
          // advance with p, since a division per position (block_size is
          // not a constant) cost a fifth of a chunk's time (one thread,
          // cache-resident KV: 0.90 -> 0.73 us per 16 positions of one kv
          // head of the 1.5b shape).
          int64_t blk = 0, off = 0;
          for (int64_t p0 = 0; p0 < n_ctx; p0 += kChunk) {
            const int n = static_cast<int>(std::min<int64_t>(kChunk, n_ctx - p0));
            for (int i = 0; i < n; ++i) {
              const int64_t slot = static_cast<int64_t>(table[blk]) * kv.block_size + off;
              k_rows[i] = kv.k + slot * kv_row + kvh * d;
              v_rows[i] = kv.v + slot * kv_row + kvh * d;
              if (++off == kv.block_size) {
                off = 0;
                ++blk;
              }
            }
            score_fn(q0, group, d, k_rows, n, scale, scores.data());
            for (int64_t g = 0; g < group; ++g) {
              float* sc = scores.data() + g * kChunk;
              const float m = std::max(run_max[g], *std::max_element(sc, sc + n));
              if (m > run_max[g]) {
                const float correction = std::exp(run_max[g] - m);
                run_sum[g] *= correction;
                float* a = acc.data() + g * d;
#pragma omp simd
                for (int64_t i = 0; i < d; ++i) a[i] *= correction;
                run_max[g] = m;
              }
              run_sum[g] += exp_fn(sc, n, m);
            }
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
