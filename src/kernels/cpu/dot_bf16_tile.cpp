// bf16 weight rows against f32 activation rows, R rows x T tokens at a
// time (R <= 4, T <= 3): the register-blocked product behind bf16 decode
// (4 rows a run apart x 1 token: four streams) and prefill (4 rows x 3
// tokens).
// Each widened weight vector serves T tokens and each activation vector R
// rows, so a 4 x 3 tile issues 4 widenings, 3 activation loads and 12 FMAs
// per 8 columns, where one dot product per (row, token) issues a widening
// and a load per FMA.
//
// Every (row, token) result is computed with the same sequence whatever the
// tile shape: one f32 accumulator, acc = fma(w[i..i+8], x[i..i+8], acc) over
// the groups of 8 columns in order, a horizontal sum, then the scalar tail
// (explicit intrinsics throughout, so nothing is left to contraction). So a
// token's logits do not depend on how many tokens share the step or how the
// rows fall to threads, only on the ISA path.
//
// The AVX-512 body takes 16 columns per step, alternating between two
// accumulators per (row, token), and finishes the row with one masked step,
// so it has no scalar tail. It widens bf16 with a shift and uses FMA, not
// AVX512_BF16's vdpbf16ps, which would need the activations rounded to bf16
// (f32 activations are part of the numerics contract). Decode is bound by
// reading the weights, which the widening does not slow.
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/row_runs.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {

// The columns past the last multiple of 8, one fused multiply-add each
// (explicit intrinsics, so every tile shape rounds alike).
__attribute__((target("avx2,fma"))) inline float tail(float acc, const uint16_t* w, const float* x,
                                                      int64_t from, int64_t n) {
  for (int64_t i = from; i < n; ++i) {
    acc = _mm_cvtss_f32(
        _mm_fmadd_ss(_mm_set_ss(bf16_to_f32(w[i])), _mm_set_ss(x[i]), _mm_set_ss(acc)));
  }
  return acc;
}

template <int R, int T>
__attribute__((target("avx2,fma"))) void tile_avx2(const uint16_t* w, int64_t row_stride,
                                                   const float* const* x, int64_t n, float* out) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const int64_t n8 = n / 8 * 8;
  for (int64_t i = 0; i < n8; i += 8) {
    if constexpr (R > T && T > 1) {
      // Prefill's 4 x 3 (and its leftovers 3 x 2, 4 x 2): the tokens'
      // vectors stay in registers and each row's widened vector is used at
      // once, so 12 accumulators, 3 activations and 1 weight fill the 16
      // registers. Decode (R x 1) keeps the order below.
      __m256 xv[T];
      for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x[t] + i);
      for (int r = 0; r < R; ++r) {
        const __m256 wv = widen_bf16x8(w + r * row_stride + i);
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    } else {
      __m256 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = widen_bf16x8(w + r * row_stride + i);
      for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(x[t] + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      out[r * T + t] = tail(hsum256(acc[r][t]), w + r * row_stride, x[t], n8, n);
    }
  }
}

// acc += the products over the 16 columns from i (the lanes past `mask`: 0).
template <int R, int T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) inline void step_avx512(
    __m512 (&acc)[R][T], const uint16_t* w, int64_t row_stride, const float* const* x, int64_t i,
    __mmask16 mask) {
  const bool full = mask == 0xFFFF;
  __m512 wv[R];
  for (int r = 0; r < R; ++r) {
    wv[r] =
        full ? widen_bf16x16(w + r * row_stride + i) : widen_bf16x16(w + r * row_stride + i, mask);
  }
  for (int t = 0; t < T; ++t) {
    const __m512 xv = full ? _mm512_loadu_ps(x[t] + i) : _mm512_maskz_loadu_ps(mask, x[t] + i);
    for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
  }
}

// Steps of 16 columns alternate between two accumulators per (row, token)
// (step s adds into acc[s % 2]; the last, masked step too), summed at the
// end: decode takes one row at a time, and a single chain of dependent FMAs
// would hold it to one step per FMA latency. 4 x 3 tiles keep their 24
// accumulators, 4 weight vectors and an activation vector in registers
// (AVX-512 has 32).
template <int R, int T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma"))) void tile_avx512(
    const uint16_t* w, int64_t row_stride, const float* const* x, int64_t n, float* out) {
  __m512 acc[2][R][T];
  for (int k = 0; k < 2; ++k) {
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) acc[k][r][t] = _mm512_setzero_ps();
    }
  }
  const int64_t n16 = n / 16 * 16;
  const __mmask16 all = 0xFFFF;
  int64_t i = 0;
  for (; i + 32 <= n16; i += 32) {
    step_avx512<R, T>(acc[0], w, row_stride, x, i, all);
    step_avx512<R, T>(acc[1], w, row_stride, x, i + 16, all);
  }
  int k = 0;
  if (i < n16) {
    step_avx512<R, T>(acc[0], w, row_stride, x, i, all);
    i += 16;
    k = 1;
  }
  if (i < n)
    step_avx512<R, T>(acc[k], w, row_stride, x, i, static_cast<__mmask16>((1u << (n - i)) - 1));
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      out[r * T + t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][r][t], acc[1][r][t]));
    }
  }
}

using TileFn = void (*)(const uint16_t*, int64_t, const float* const*, int64_t, float*);

template <int R>
TileFn tile_for(int n_x) {
  const bool avx512 = active_isa() == Isa::kAvx512;
  switch (n_x) {
    case 1:
      return avx512 ? tile_avx512<R, 1> : tile_avx2<R, 1>;
    case 2:
      return avx512 ? tile_avx512<R, 2> : tile_avx2<R, 2>;
    default:
      return avx512 ? tile_avx512<R, 3> : tile_avx2<R, 3>;
  }
}

// Decode: runs of rows read side by side (row_runs.h), as kRowRuns x 1
// tiles whose rows are a run apart.
void rows_in_runs(TileFn group_tile, TileFn one_tile, const uint16_t* w, int64_t row_stride,
                  int n_rows, const float* x, int64_t n, float* out) {
  for_row_runs(
      n_rows,
      [&](int i, int run) {
        float got[kRowRuns];
        group_tile(w + i * row_stride, run * row_stride, &x, n, got);
        for (int s = 0; s < kRowRuns; ++s) out[s * run + i] = got[s];
      },
      [&](int r) { one_tile(w + r * row_stride, row_stride, &x, n, out + r); });
}

}  // namespace

void dot_bf16_rows(const uint16_t* w, int64_t row_stride, int n_rows, const float* x, int64_t n,
                   float* out) {
  switch (active_isa()) {
    case Isa::kAvx512:
      return rows_in_runs(tile_avx512<kRowRuns, 1>, tile_avx512<1, 1>, w, row_stride, n_rows, x, n,
                          out);
    case Isa::kAvx2:
      return rows_in_runs(tile_avx2<kRowRuns, 1>, tile_avx2<1, 1>, w, row_stride, n_rows, x, n,
                          out);
    default:
      for (int r = 0; r < n_rows; ++r) out[r] = dot_bf16(w + r * row_stride, x, n);
  }
}

void dot_bf16_tile(const uint16_t* w, int64_t row_stride, int n_rows, const float* const* x,
                   int n_x, int64_t n, float* out) {
  if (active_isa() == Isa::kScalar) {  // dot_bf16 takes its scalar body
    for (int r = 0; r < n_rows; ++r) {
      for (int t = 0; t < n_x; ++t) out[r * n_x + t] = dot_bf16(w + r * row_stride, x[t], n);
    }
    return;
  }
  switch (n_rows) {
    case 1:
      return tile_for<1>(n_x)(w, row_stride, x, n, out);
    case 2:
      return tile_for<2>(n_x)(w, row_stride, x, n, out);
    case 3:
      return tile_for<3>(n_x)(w, row_stride, x, n, out);
    default:
      return tile_for<4>(n_x)(w, row_stride, x, n, out);
  }
}

}  // namespace r1::kernels::cpu
