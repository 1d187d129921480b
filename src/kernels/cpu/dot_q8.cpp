// int8 weight rows against int8 activation rows (blocks of 32, each with its
// own f32 scale). AVX2 multiplies |x| (u8) by w*sign(x) (s8) with maddubs:
// both factors are within [-127, 127], so the pairwise i16 sums cannot
// saturate (2 * 127 * 127 < 32767).
//
// Every kernel shape computes each (row, token) result with the same
// instruction sequence: one f32 accumulator per group, blocks in order,
// then acc = fma(group sum, row scale, acc), then a horizontal sum. So a
// token's logits do not depend on how many tokens share the step or how the
// rows fall to threads (batch and thread-count invariance), only on the ISA.
// The shapes differ in what they share: rows x 1 token (decode; the VNNI
// body reads four runs of rows side by side and prepares the token's
// activations once for all the rows), 1 row x N tokens, and 2 rows x 4
// tokens (prefill: each load serves several products).
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "core/aligned_buffer.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/row_runs.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

constexpr int kPrefetchAhead = 4096;  // bytes ahead of the weight stream (swept 512-8192)
// Decode reads kRowRuns streams per thread, each prefetched this far ahead
// (512, 1024 and 2048 tried with the VNNI body; 1024 best).
constexpr int kDecodePrefetchAhead = 1024;

// The scalar path's one (row, token) product; every scalar shape calls it.
float row_dot_scalar(const int8_t* w, const float* ws, int64_t group, const int8_t* xq,
                     const float* xs, int64_t padded) {
  float acc = 0.0f;
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    float gacc = 0.0f;
    for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
      int32_t s = 0;
      for (int j = 0; j < kQuantBlock; ++j) s += static_cast<int32_t>(w[c + j]) * xq[c + j];
      gacc += static_cast<float>(s) * xs[c / kQuantBlock];
    }
    acc += gacc * ws[g0 / group];
  }
  return acc;
}

// gacc + (w . x over one block) * x_scale, the one step every shape repeats
// (ax = |x|, computed once per activation block by the caller).
__attribute__((target("avx2,fma"))) inline __m256 block_step(__m256i w, __m256i x, __m256i ax,
                                                             __m256 x_scale, __m256 gacc) {
  const __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, x));
  const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
  return _mm256_fmadd_ps(p, x_scale, gacc);
}

__attribute__((target("avx2,fma"))) inline __m256 block_step(__m256i w, __m256i x, __m256 x_scale,
                                                             __m256 gacc) {
  return block_step(w, x, _mm256_sign_epi8(x, x), x_scale, gacc);
}

__attribute__((target("avx2,fma"))) inline __m256i load32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Rows [0, n_rows) (`row_stride` bytes, `ws_stride` scales apart) in runs
// read side by side (row_runs.h): kernel(n, rows, scales, outs) takes n =
// kRowRuns rows a run apart, then each row left over alone (n = 1); n is a
// std::integral_constant.
template <typename Kernel>
void q8_rows_in_runs(const int8_t* w, int64_t row_stride, const float* ws, int64_t ws_stride,
                     int n_rows, float* out, Kernel&& kernel) {
  for_row_runs(
      n_rows,
      [&](int i, int run) {
        const int8_t* rows[kRowRuns];
        const float* scales[kRowRuns];
        float* outs[kRowRuns];
        for (int s = 0; s < kRowRuns; ++s) {
          const int r = s * run + i;
          rows[s] = w + r * row_stride;
          scales[s] = ws + r * ws_stride;
          outs[s] = out + r;
        }
        kernel(std::integral_constant<int, kRowRuns>{}, rows, scales, outs);
      },
      [&](int r) {
        const int8_t* row = w + r * row_stride;
        const float* scale = ws + r * ws_stride;
        float* o = out + r;
        kernel(std::integral_constant<int, 1>{}, &row, &scale, &o);
      });
}

// Decode on the AVX2 path: R rows (w[r], scales ws[r]) against one token,
// *out[r]. Per row the arithmetic is the other AVX2 shapes', step for step.
template <int R>
__attribute__((target("avx2,fma"))) void rows_avx2(const int8_t* const* w, const float* const* ws,
                                                   int64_t group, const int8_t* xq, const float* xs,
                                                   int64_t padded, float* const* out) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    __m256 gacc[R];
    for (int r = 0; r < R; ++r) gacc[r] = _mm256_setzero_ps();
    for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
      const __m256i xv = load32(xq + c);
      const __m256i ax = _mm256_sign_epi8(xv, xv);
      const __m256 scale = _mm256_set1_ps(xs[c / kQuantBlock]);
      for (int r = 0; r < R; ++r) {
        if ((c & 63) == 0) {
          _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + kDecodePrefetchAhead, _MM_HINT_T0);
        }
        gacc[r] = block_step(load32(w[r] + c), xv, ax, scale, gacc[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_fmadd_ps(gacc[r], _mm256_set1_ps(ws[r][g0 / group]), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) *out[r] = hsum256(acc[r]);
}

// 1 row x N tokens.
template <int N>
__attribute__((target("avx2,fma"))) void tokens_avx2(const int8_t* w, const float* ws,
                                                     int64_t group, const int8_t* const* xq,
                                                     const float* const* xs, int64_t padded,
                                                     float* out) {
  __m256 acc[N];
  for (int t = 0; t < N; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    __m256 gacc[N];
    for (int t = 0; t < N; ++t) gacc[t] = _mm256_setzero_ps();
    for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
      const __m256i wv = load32(w + c);
      for (int t = 0; t < N; ++t) {
        gacc[t] =
            block_step(wv, load32(xq[t] + c), _mm256_set1_ps(xs[t][c / kQuantBlock]), gacc[t]);
      }
    }
    const __m256 scale = _mm256_set1_ps(ws[g0 / group]);
    for (int t = 0; t < N; ++t) acc[t] = _mm256_fmadd_ps(gacc[t], scale, acc[t]);
  }
  for (int t = 0; t < N; ++t) out[t] = hsum256(acc[t]);
}

// 2 rows x 4 tokens (prefill): each weight load serves four tokens and each
// activation load two rows. Per (row, token) the arithmetic is the other
// AVX2 shapes' step for step. With one block per group (GGUF's blocks of
// 32), gacc = fma(p, x_scale, 0) is exactly p * x_scale, so the group sum
// is a multiply and only the 8 accumulators stay live across blocks; with
// longer groups, 8 group sums and 8 accumulators fill the 16 registers and
// the accumulators, touched once per group, spill.
__attribute__((target("avx2,fma"))) void two_by_four_avx2(const int8_t* w0, const int8_t* w1,
                                                          const float* ws0, const float* ws1,
                                                          int64_t group, const int8_t* const* xq,
                                                          const float* const* xs, int64_t padded,
                                                          float* out) {
  __m256 acc0[4], acc1[4];
  for (int t = 0; t < 4; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
  if (group == kQuantBlock) {
    for (int64_t c = 0, b = 0; c < padded; c += kQuantBlock, ++b) {
      const __m256i wv0 = load32(w0 + c);
      const __m256i wv1 = load32(w1 + c);
      const __m256 s0 = _mm256_set1_ps(ws0[b]), s1 = _mm256_set1_ps(ws1[b]);
      for (int t = 0; t < 4; ++t) {
        const __m256i xv = load32(xq[t] + c);
        const __m256i ax = _mm256_sign_epi8(xv, xv);
        const __m256 scale = _mm256_set1_ps(xs[t][b]);
        const __m256 p0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(
            _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv0, xv)), _mm256_set1_epi16(1)));
        const __m256 p1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(
            _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv1, xv)), _mm256_set1_epi16(1)));
        acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(p0, scale), s0, acc0[t]);
        acc1[t] = _mm256_fmadd_ps(_mm256_mul_ps(p1, scale), s1, acc1[t]);
      }
    }
  } else {
    for (int64_t g0 = 0; g0 < padded; g0 += group) {
      __m256 g0acc[4], g1acc[4];
      for (int t = 0; t < 4; ++t) g0acc[t] = g1acc[t] = _mm256_setzero_ps();
      for (int64_t c = g0; c < g0 + group; c += kQuantBlock) {
        const __m256i wv0 = load32(w0 + c);
        const __m256i wv1 = load32(w1 + c);
        for (int t = 0; t < 4; ++t) {
          const __m256i xv = load32(xq[t] + c);
          const __m256i ax = _mm256_sign_epi8(xv, xv);
          const __m256 scale = _mm256_set1_ps(xs[t][c / kQuantBlock]);
          g0acc[t] = block_step(wv0, xv, ax, scale, g0acc[t]);
          g1acc[t] = block_step(wv1, xv, ax, scale, g1acc[t]);
        }
      }
      const __m256 s0 = _mm256_set1_ps(ws0[g0 / group]), s1 = _mm256_set1_ps(ws1[g0 / group]);
      for (int t = 0; t < 4; ++t) {
        acc0[t] = _mm256_fmadd_ps(g0acc[t], s0, acc0[t]);
        acc1[t] = _mm256_fmadd_ps(g1acc[t], s1, acc1[t]);
      }
    }
  }
  for (int t = 0; t < 4; ++t) {
    out[t] = hsum256(acc0[t]);
    out[4 + t] = hsum256(acc1[t]);
  }
}

// ---- AVX-512 VNNI ----

#define R1_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

// One activation pair of blocks as every weight row of a step uses it.
struct XPair {
  __m512i ax;     // |x|
  __mmask64 neg;  // x < 0
  __m512 scale;   // [x_scale(b) x8, x_scale(b+1) x8] (x_scale(b) x16 for a lone block)
};

// [x_scale(b) x8, x_scale(b+1) x8], or x_scale(b) x16 for a lone block.
R1_VNNI_TARGET inline __m512 pair_scale(const float* xs, bool full) {
  return full ? spread_pair<0, 1>(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(xs))))
              : _mm512_set1_ps(*xs);
}

R1_VNNI_TARGET inline XPair x_pair(const int8_t* xq, const float* xs, __mmask64 bytes, bool full) {
  const __m512i x = _mm512_maskz_loadu_epi8(bytes, xq);
  return {_mm512_abs_epi8(x), _mm512_movepi8_mask(x), pair_scale(xs, full)};
}

// gacc + (w . x over the pair) * x_scale, per half.
R1_VNNI_TARGET inline __m512 pair_step(__m512i w, const XPair& x, __m512 gacc) {
  const __m512i signed_w = _mm512_mask_sub_epi8(w, x.neg, _mm512_setzero_si512(), w);
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), x.ax, signed_w);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), x.scale, gacc);
}

// The pair at column c (a lone block when fewer than 64 columns remain in
// its group) of R rows against N tokens, added into g.
template <int R, int N>
R1_VNNI_TARGET inline void tile_pair(const int8_t* const* w, const int8_t* const* xq,
                                     const float* const* xs, int64_t c, bool full,
                                     __m512 (&g)[R][N]) {
  const __mmask64 bytes = full ? ~__mmask64{0} : __mmask64{0xFFFFFFFF};
  XPair x[N];
  for (int t = 0; t < N; ++t) x[t] = x_pair(xq[t] + c, xs[t] + c / kQuantBlock, bytes, full);
  for (int r = 0; r < R; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + kPrefetchAhead, _MM_HINT_T0);
    const __m512i wv = _mm512_maskz_loadu_epi8(bytes, w[r] + c);
    for (int t = 0; t < N; ++t) g[r][t] = pair_step(wv, x[t], g[r][t]);
  }
}

// R rows (w[r], with scales ws[r]) x N tokens: out[r * N + t]. Within a
// group the even pairs add into one accumulator and the odd pairs into
// another, summed at the group's end: one chain of dependent FMAs per row
// would hold a long row (the 1.5b shape's down_proj: 140 pairs) to one pair
// per FMA latency, and out-of-order execution cannot overlap the next row's
// chain when a row's instructions exceed its window (one thread, 512 rows
// of 1536 columns in L2: 33-35 -> 51 GB/s).
template <int R, int N>
R1_VNNI_TARGET void tile_vnni(const int8_t* const* w, const float* const* ws, int64_t group,
                              const int8_t* const* xq, const float* const* xs, int64_t padded,
                              float* out) {
  __m512 acc[R][N];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < N; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  constexpr int64_t kPair = 2 * kQuantBlock;
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    const int64_t g1 = g0 + group;
    __m512 even[R][N], odd[R][N];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < N; ++t) even[r][t] = odd[r][t] = _mm512_setzero_ps();
    }
    for (int64_t c = g0; c < g1; c += 2 * kPair) {
      tile_pair<R, N>(w, xq, xs, c, g1 - c >= kPair, even);
      if (c + kPair < g1) tile_pair<R, N>(w, xq, xs, c + kPair, g1 - c >= 2 * kPair, odd);
    }
    for (int r = 0; r < R; ++r) {
      const __m512 scale = _mm512_set1_ps(ws[r][g0 / group]);
      for (int t = 0; t < N; ++t) {
        acc[r][t] = _mm512_fmadd_ps(_mm512_add_ps(even[r][t], odd[r][t]), scale, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < N; ++t) out[r * N + t] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// R rows (w[r], scales ws[r]) against one token whose |x| and sign masks
// rows_vnni prepared (ax, neg: pair k at ax + 64 k, neg[k]); the scales are
// spread from xs as the rows go. Per row this is tile_vnni's arithmetic
// step for step (even and odd pairs of a group in two accumulators), so
// results match every other shape bit for bit.
template <int R>
R1_VNNI_TARGET inline void rows_prepared(const int8_t* const* w, const float* const* ws,
                                         int64_t group, const uint8_t* ax, const uint64_t* neg,
                                         const float* xs, int64_t padded, float* const* out) {
  constexpr int64_t kPair = 2 * kQuantBlock;
  const int64_t pairs_per_group = (group + kPair - 1) / kPair;
  // Pair kk (at column c) into g[r] for every row.
  auto pair = [&](int64_t c, int64_t kk, bool full, __m512(&g)[R]) R1_VNNI_TARGET {
    const XPair x{_mm512_load_si512(ax + kk * 64), neg[kk], pair_scale(xs + c / kQuantBlock, full)};
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w[r] + c) + kDecodePrefetchAhead, _MM_HINT_T0);
      const __m512i wv =
          _mm512_maskz_loadu_epi8(full ? ~__mmask64{0} : __mmask64{0xFFFFFFFF}, w[r] + c);
      g[r] = pair_step(wv, x, g[r]);
    }
  };
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g0 = 0, k = 0; g0 < padded; g0 += group, k += pairs_per_group) {
    const int64_t g1 = g0 + group;
    __m512 even[R], odd[R];
    for (int r = 0; r < R; ++r) even[r] = odd[r] = _mm512_setzero_ps();
    for (int64_t c = g0, kk = k; c < g1; c += 2 * kPair, kk += 2) {
      pair(c, kk, g1 - c >= kPair, even);
      if (c + kPair < g1) pair(c + kPair, kk + 1, g1 - c >= 2 * kPair, odd);
    }
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_add_ps(even[r], odd[r]), _mm512_set1_ps(ws[r][g0 / group]),
                               acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) *out[r] = _mm512_reduce_add_ps(acc[r]);
}

// Decode on the VNNI path: any number of rows against one token. The
// token's |x| and sign masks are made once per call and every row reuses
// them; per 64 weights a row reads 80 bytes of activations (|x|, mask, two
// scales), not 136 with the scales spread in advance, which on 8960-column
// rows crowded the weight stream out of L1.
//
// The rows go in runs read side by side (row_runs.h), each prefetched 1 KB
// ahead: two threads, a standalone copy of this loop in turn with the
// one-stream version, 1536 columns 41-51 -> 54-72 GB/s, 8960 columns 34-42
// -> 60-67 GB/s, against a triad of 54-64 GB/s.
R1_VNNI_TARGET void rows_vnni(const int8_t* w, int64_t row_stride, const float* ws,
                              int64_t ws_stride, int n_rows, int64_t group, const int8_t* xq,
                              const float* xs, int64_t padded, float* out) {
  constexpr int64_t kPair = 2 * kQuantBlock;
  const int64_t pairs_per_group = (group + kPair - 1) / kPair;
  const size_t n_pairs = static_cast<size_t>(padded / group * pairs_per_group);
  thread_local AlignedBuffer<uint8_t> ax_buf;
  thread_local AlignedBuffer<uint64_t> neg_buf;
  if (neg_buf.size() < n_pairs) {
    ax_buf.resize(n_pairs * 64);
    neg_buf.resize(n_pairs);
  }
  uint8_t* ax = ax_buf.data();
  uint64_t* neg = neg_buf.data();
  size_t k = 0;
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    for (int64_t c = g0; c < g0 + group; c += kPair, ++k) {
      const bool full = g0 + group - c >= kPair;
      const XPair x =
          x_pair(xq + c, xs + c / kQuantBlock, full ? ~__mmask64{0} : __mmask64{0xFFFFFFFF}, full);
      _mm512_store_si512(ax + k * 64, x.ax);
      neg[k] = x.neg;
    }
  }
  q8_rows_in_runs(
      w, row_stride, ws, ws_stride, n_rows, out,
      [&](auto n, const int8_t* const* rows, const float* const* scales, float* const* outs) {
        rows_prepared<decltype(n)::value>(rows, scales, group, ax, neg, xs, padded, outs);
      });
}

#undef R1_VNNI_TARGET

}  // namespace

void dot_q8(const int8_t* w, const float* w_scales, int64_t group, const int8_t* const* xq,
            const float* const* xs, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < n_x; ++t) out[t] = row_dot_scalar(w, w_scales, group, xq[t], xs[t], padded);
    return;
  }
  if (vnni_kernels()) {
    switch (n_x) {
      case 1:
        return tile_vnni<1, 1>(&w, &w_scales, group, xq, xs, padded, out);
      case 2:
        return tile_vnni<1, 2>(&w, &w_scales, group, xq, xs, padded, out);
      case 3:
        return tile_vnni<1, 3>(&w, &w_scales, group, xq, xs, padded, out);
      default:
        return tile_vnni<1, 4>(&w, &w_scales, group, xq, xs, padded, out);
    }
  }
  switch (n_x) {
    case 1:
      return tokens_avx2<1>(w, w_scales, group, xq, xs, padded, out);
    case 2:
      return tokens_avx2<2>(w, w_scales, group, xq, xs, padded, out);
    case 3:
      return tokens_avx2<3>(w, w_scales, group, xq, xs, padded, out);
    default:
      return tokens_avx2<4>(w, w_scales, group, xq, xs, padded, out);
  }
}

void dot_q8_rows(const int8_t* w, int64_t row_stride, const float* w_scales, int64_t ws_stride,
                 int n_rows, int64_t group, const int8_t* xq, const float* xs, int64_t padded,
                 float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int r = 0; r < n_rows; ++r) {
      out[r] = row_dot_scalar(w + r * row_stride, w_scales + r * ws_stride, group, xq, xs, padded);
    }
    return;
  }
  if (vnni_kernels()) {
    return rows_vnni(w, row_stride, w_scales, ws_stride, n_rows, group, xq, xs, padded, out);
  }
  q8_rows_in_runs(
      w, row_stride, w_scales, ws_stride, n_rows, out,
      [&](auto n, const int8_t* const* rows, const float* const* scales, float* const* outs) {
        rows_avx2<decltype(n)::value>(rows, scales, group, xq, xs, padded, outs);
      });
}

void dot_q8_2x4(const int8_t* w0, const int8_t* w1, const float* ws0, const float* ws1,
                int64_t group, const int8_t* const* xq, const float* const* xs, int64_t padded,
                float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < 4; ++t) {
      out[t] = row_dot_scalar(w0, ws0, group, xq[t], xs[t], padded);
      out[4 + t] = row_dot_scalar(w1, ws1, group, xq[t], xs[t], padded);
    }
    return;
  }
  if (vnni_kernels()) {
    const int8_t* const rows[2] = {w0, w1};
    const float* const scales[2] = {ws0, ws1};
    return tile_vnni<2, 4>(rows, scales, group, xq, xs, padded, out);
  }
  two_by_four_avx2(w0, w1, ws0, ws1, group, xq, xs, padded, out);
}

}  // namespace r1::kernels::cpu
