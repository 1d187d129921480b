// int4 weight rows (groups of 32 with f16 scales, in the interleaved layout
// of ops.h) against int8 activation rows arranged to match
// (q4_prepare_activations). The stored nibbles are q + 8, unsigned; the
// products nibble x activation are summed per block in i32 (exact), and the
// +8 is taken off by starting each block's sum at -8 * sum(x) over the block.
//
// The layout puts four bytes of each of 16 blocks side by side, so one
// 64-byte load (AVX-512) or two 32-byte loads (AVX2) hold a slice of 16
// blocks with one i32 lane per block: vpdpbusd (or maddubs and madd) adds
// each slice's products straight into its block's lane, four slices and two
// nibble halves make a group's 16 exact block sums, and one conversion and
// one FMA with the 16 combined scales x_scale * w_scale finish the group.
// Per 64 bytes of weights the AVX-512 path issues a load, two masks, a
// shift and two vpdpbusd; no scale is spread or broadcast and no block sum
// is reduced across lanes.
//
// Every shape (rows x 1 token for decode, 1 row x N tokens and 2 rows x 4
// tokens for prefill) computes each (row, token) result with the same
// floating-point sequence: per group, acc = fma(float(block sums), combined
// scales, acc) lane by lane (AVX2: the group's two halves in turn), then a
// horizontal sum. The block sums are exact integers, so the order in which
// they are formed does not matter. Results therefore do not depend on batch
// composition or threads, only on the ISA path.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/row_runs.h"
#include "kernels/cpu_ops.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

namespace {

constexpr int kPrefetchAhead = 4096;  // bytes ahead of the weight stream (1024-8192 tried)
// Decode reads kRowRuns streams per thread (row_runs.h), each prefetched
// this far ahead by the VNNI body (512, 1024, 2048 and 4096 tried on the
// 1.5b shape; 1024 and 2048 best).
constexpr int kDecodePrefetchAhead = 2048;

float row_dot_scalar(const uint8_t* w, const uint16_t* ws, const int8_t* xi, const float* xs,
                     int64_t padded) {
  const int64_t n_blocks = padded / kQuantBlock;
  float acc = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t s = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      s += (q4_stored(w, n_blocks, b, j) - 8) * xi[q4_x_index(n_blocks, b, j)];
    }
    acc += static_cast<float>(s) * (xs[b] * f16_to_f32(ws[b]));
  }
  return acc;
}

// ---- AVX2 ----
//
// A group is taken as two halves of up to eight blocks (eight i32 lanes):
// half h reads bytes 32 h .. 32 h + 31 of each part (its blocks' slices).

// The first n (0..8) i32 lanes set.
__attribute__((target("avx2,fma,f16c"))) inline __m256i lane_mask8(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 32 bytes from p, or only the first n lanes' 4 bytes each (others zero).
template <bool kFull>
__attribute__((target("avx2,fma,f16c"))) inline __m256i load_lanes8(const void* p, __m256i lanes) {
  if constexpr (kFull) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
  } else {
    return _mm256_maskload_epi32(static_cast<const int*>(p), lanes);
  }
}

// The combined scales x_scale * w_scale of n (1..8) blocks from b, zero
// past n.
template <bool kFull>
__attribute__((target("avx2,fma,f16c"))) inline __m256 scales8(const uint16_t* ws, const float* xs,
                                                               int64_t b, int64_t n,
                                                               __m256i lanes) {
  if constexpr (kFull) {
    return _mm256_mul_ps(
        _mm256_loadu_ps(xs + b),
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + b))));
  } else {
    alignas(16) uint16_t w8[8] = {};
    std::memcpy(w8, ws + b, static_cast<size_t>(n) * sizeof(uint16_t));
    return _mm256_mul_ps(_mm256_maskload_ps(xs + b, lanes),
                         _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(w8))));
  }
}

// One half (n blocks from g0 + 8 h of a group of t) for R rows x N tokens.
template <int R, int N, bool kFull>
__attribute__((target("avx2,fma,f16c"))) inline void half_avx2(
    const uint8_t* const* w, const uint16_t* const* ws, const int8_t* const* xi,
    const float* const* xs, const int32_t* const* xo, int64_t g0, int64_t t, int h, int64_t n,
    __m256* acc) {
  const __m256i lanes = lane_mask8(n);
  const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const int64_t b = g0 + 8 * h;
  __m256i sum[R][N];
  for (int k = 0; k < N; ++k) {
    const __m256i off = load_lanes8<kFull>(xo[k] + b, lanes);
    for (int r = 0; r < R; ++r) sum[r][k] = _mm256_sub_epi32(_mm256_setzero_si256(), off);
  }
  for (int p = 0; p < 4; ++p) {
    __m256i lo[R], hi[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* wp = w[r] + g0 * 16 + p * 4 * t + 32 * h;
      _mm_prefetch(reinterpret_cast<const char*>(wp) + kPrefetchAhead, _MM_HINT_T0);
      const __m256i raw = load_lanes8<kFull>(wp, lanes);
      lo[r] = _mm256_and_si256(raw, mask);
      hi[r] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
    }
    for (int k = 0; k < N; ++k) {
      const int8_t* xp = xi[k] + g0 * 32 + p * 8 * t + 32 * h;
      const __m256i xl = load_lanes8<kFull>(xp, lanes);
      const __m256i xh = load_lanes8<kFull>(xp + 4 * t, lanes);
      for (int r = 0; r < R; ++r) {
        // Each i16 is at most 2 * 15 * 127 per maddubs: the two sum exactly.
        const __m256i p16 =
            _mm256_add_epi16(_mm256_maddubs_epi16(lo[r], xl), _mm256_maddubs_epi16(hi[r], xh));
        sum[r][k] = _mm256_add_epi32(sum[r][k], _mm256_madd_epi16(p16, ones));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int k = 0; k < N; ++k) {
      const __m256 c = scales8<kFull>(ws[r], xs[k], b, n, lanes);
      acc[r * N + k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r][k]), c, acc[r * N + k]);
    }
  }
}

// R rows (w[r], scales ws[r]) x N tokens: out[r * N + t].
template <int R, int N>
__attribute__((target("avx2,fma,f16c"))) void tile_avx2(
    const uint8_t* const* w, const uint16_t* const* ws, const int8_t* const* xi,
    const float* const* xs, const int32_t* const* xo, int64_t padded, float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  __m256 acc[R * N];
  for (int i = 0; i < R * N; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < n_blocks; g0 += kQ4Group) {
    const int64_t t = q4_group_blocks(n_blocks, g0);
    if (t == kQ4Group) {
      half_avx2<R, N, true>(w, ws, xi, xs, xo, g0, t, 0, 8, acc);
      half_avx2<R, N, true>(w, ws, xi, xs, xo, g0, t, 1, 8, acc);
    } else {
      half_avx2<R, N, false>(w, ws, xi, xs, xo, g0, t, 0, t < 8 ? t : 8, acc);
      if (t > 8) half_avx2<R, N, false>(w, ws, xi, xs, xo, g0, t, 1, t - 8, acc);
    }
  }
  for (int i = 0; i < R * N; ++i) out[i] = hsum256(acc[i]);
}

// ---- AVX-512 VNNI ----

// One group (t blocks from g0) for R rows x N tokens; lanes past t stay zero.
// kAhead: how far ahead of each row the weights are prefetched.
template <int R, int N, bool kFull, int kAhead>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) inline void
group_vnni(const uint8_t* const* w, const uint16_t* const* ws, const int8_t* const* xi,
           const float* const* xs, const int32_t* const* xo, int64_t g0, int64_t t, __m512* acc) {
  const __mmask16 lanes = kFull ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << t) - 1);
  const __mmask64 bytes = kFull ? ~__mmask64{0} : (__mmask64{1} << (4 * t)) - 1;
  auto load = [bytes](const void* p) __attribute__((target("avx512f,avx512bw"))) {
    return kFull ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(bytes, p);
  };
  const __m512i mask = _mm512_set1_epi8(0x0F);
  // A lone (row, token) pair (decode's left-over rows, one-token calls)
  // has no other sums to overlap with, so it splits each sum into two
  // chains, low and high nibbles, and eight dependent vpdpbusd do not bound
  // it by latency; the sums are exact integers, so this changes no result.
  constexpr bool kTwoChains = R * N == 1;
  __m512i sum[R][N], sum_hi[R][N];
  for (int k = 0; k < N; ++k) {
    const __m512i off =
        _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_loadu_epi32(lanes, xo[k] + g0));
    for (int r = 0; r < R; ++r) {
      sum[r][k] = off;
      if constexpr (kTwoChains) sum_hi[r][k] = _mm512_setzero_si512();
    }
  }
  for (int p = 0; p < 4; ++p) {
    __m512i lo[R], hi[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* wp = w[r] + g0 * 16 + p * 4 * t;
      _mm_prefetch(reinterpret_cast<const char*>(wp) + kAhead, _MM_HINT_T0);
      const __m512i raw = load(wp);
      lo[r] = _mm512_and_si512(raw, mask);
      hi[r] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
    }
    for (int k = 0; k < N; ++k) {
      const int8_t* xp = xi[k] + g0 * 32 + p * 8 * t;
      const __m512i xl = load(xp), xh = load(xp + 4 * t);
      for (int r = 0; r < R; ++r) {
        sum[r][k] = _mm512_dpbusd_epi32(sum[r][k], lo[r], xl);
        if constexpr (kTwoChains) {
          sum_hi[r][k] = _mm512_dpbusd_epi32(sum_hi[r][k], hi[r], xh);
        } else {
          sum[r][k] = _mm512_dpbusd_epi32(sum[r][k], hi[r], xh);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(ws[r] + g0) + kAhead / 8, _MM_HINT_T0);
    const __m512 wsc = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, ws[r] + g0));
    for (int k = 0; k < N; ++k) {
      __m512i s = sum[r][k];
      if constexpr (kTwoChains) s = _mm512_add_epi32(s, sum_hi[r][k]);
      const __m512 c = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, xs[k] + g0), wsc);
      acc[r * N + k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), c, acc[r * N + k]);
    }
  }
}

// R rows (w[r], scales ws[r]) x N tokens: out[r * N + t].
template <int R, int N, int kAhead = kPrefetchAhead>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))) void tile_vnni(
    const uint8_t* const* w, const uint16_t* const* ws, const int8_t* const* xi,
    const float* const* xs, const int32_t* const* xo, int64_t padded, float* out) {
  const int64_t n_blocks = padded / kQuantBlock;
  __m512 acc[R * N];
  for (int i = 0; i < R * N; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t g0 = 0; g0 < n_blocks; g0 += kQ4Group) {
    const int64_t t = q4_group_blocks(n_blocks, g0);
    if (t == kQ4Group) {
      group_vnni<R, N, true, kAhead>(w, ws, xi, xs, xo, g0, t, acc);
    } else {
      group_vnni<R, N, false, kAhead>(w, ws, xi, xs, xo, g0, t, acc);
    }
  }
  for (int i = 0; i < R * N; ++i) out[i] = _mm512_reduce_add_ps(acc[i]);
}

template <int N>
void one_row(const uint8_t* w, const uint16_t* ws, const int8_t* const* xi, const float* const* xs,
             const int32_t* const* xo, int64_t padded, float* out) {
  if (vnni_kernels()) return tile_vnni<1, N>(&w, &ws, xi, xs, xo, padded, out);
  tile_avx2<1, N>(&w, &ws, xi, xs, xo, padded, out);
}

}  // namespace

void q4_prepare_activations(const int8_t* xq, int64_t padded, int8_t* xi, int32_t* xo) {
  const int64_t n_blocks = padded / kQuantBlock;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* x = xq + b * kQuantBlock;
    int32_t s = 0;
    for (int j = 0; j < kQuantBlock; ++j) s += x[j];
    xo[b] = 8 * s;
    for (int j = 0; j < kQuantBlock; j += 4) std::memcpy(xi + q4_x_index(n_blocks, b, j), x + j, 4);
  }
}

void dot_q4(const uint8_t* w, const uint16_t* w_scales, const int8_t* const* xi,
            const float* const* xs, const int32_t* const* xo, int n_x, int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < n_x; ++t) out[t] = row_dot_scalar(w, w_scales, xi[t], xs[t], padded);
    return;
  }
  switch (n_x) {
    case 1:
      return one_row<1>(w, w_scales, xi, xs, xo, padded, out);
    case 2:
      return one_row<2>(w, w_scales, xi, xs, xo, padded, out);
    case 3:
      return one_row<3>(w, w_scales, xi, xs, xo, padded, out);
    default:
      return one_row<4>(w, w_scales, xi, xs, xo, padded, out);
  }
}

void dot_q4_rows(const uint8_t* w, int64_t row_stride, const uint16_t* w_scales, int64_t ws_stride,
                 int n_rows, const int8_t* xi, const float* xs, const int32_t* xo, int64_t padded,
                 float* out) {
  const Isa isa = active_isa();
  if (isa == Isa::kScalar) {
    for (int r = 0; r < n_rows; ++r) {
      out[r] = row_dot_scalar(w + r * row_stride, w_scales + r * ws_stride, xi, xs, padded);
    }
    return;
  }
  // Runs of rows read side by side (row_runs.h). Each row keeps its own
  // accumulators, so its bits are the one-row tile's.
  const bool vnni = vnni_kernels();
  for_row_runs(
      n_rows,
      [&](int i, int run) {
        const uint8_t* rows[kRowRuns];
        const uint16_t* scales[kRowRuns];
        float got[kRowRuns];
        for (int s = 0; s < kRowRuns; ++s) {
          rows[s] = w + (s * run + i) * row_stride;
          scales[s] = w_scales + (s * run + i) * ws_stride;
        }
        if (vnni) {
          tile_vnni<kRowRuns, 1, kDecodePrefetchAhead>(rows, scales, &xi, &xs, &xo, padded, got);
        } else {
          tile_avx2<kRowRuns, 1>(rows, scales, &xi, &xs, &xo, padded, got);
        }
        for (int s = 0; s < kRowRuns; ++s) out[s * run + i] = got[s];
      },
      [&](int r) {
        const uint8_t* row = w + r * row_stride;
        const uint16_t* scales = w_scales + r * ws_stride;
        if (vnni) {
          tile_vnni<1, 1>(&row, &scales, &xi, &xs, &xo, padded, out + r);
        } else {
          tile_avx2<1, 1>(&row, &scales, &xi, &xs, &xo, padded, out + r);
        }
      });
}

void dot_q4_2x4(const uint8_t* w0, const uint8_t* w1, const uint16_t* ws0, const uint16_t* ws1,
                const int8_t* const* xi, const float* const* xs, const int32_t* const* xo,
                int64_t padded, float* out) {
  if (active_isa() == Isa::kScalar) {
    for (int t = 0; t < 4; ++t) {
      out[t] = row_dot_scalar(w0, ws0, xi[t], xs[t], padded);
      out[4 + t] = row_dot_scalar(w1, ws1, xi[t], xs[t], padded);
    }
    return;
  }
  const uint8_t* const rows[2] = {w0, w1};
  const uint16_t* const scales[2] = {ws0, ws1};
  if (vnni_kernels()) return tile_vnni<2, 4>(rows, scales, xi, xs, xo, padded, out);
  tile_avx2<2, 4>(rows, scales, xi, xs, xo, padded, out);
}

}  // namespace r1::kernels::cpu
