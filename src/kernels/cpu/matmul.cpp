// Matrix products y = x W^T for every weight dtype. Threads split the output
// rows (prefill: one range each; decode: chunks handed out in turn, see
// for_row_ranges); each thread walks its rows once and takes every token
// against a row (or, for bf16 prefill, a block of rows) while it is hot in
// L1 (L2), so the weights stream from memory once per call whatever the
// number of tokens. For int8/int4 weights the activations are first
// quantised once per call (blocks of 32, quant.h; for int4 also arranged as
// its layout wants), and each weight block is applied to up to four tokens
// from registers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "core/aligned_buffer.h"
#include "core/check.h"
#include "kernels/cpu_ops.h"
#include "kernels/quant.h"

namespace r1::kernels::cpu {

namespace {

// x and, when a quantised weight needs them, its quantised copies.
struct Activations {
  const float* x = nullptr;
  int64_t n_tokens = 0;
  int64_t cols = 0;
  const int8_t* q = nullptr;   // [n_tokens, padded]
  const float* s = nullptr;    // [n_tokens, padded / 32]
  const int8_t* qi = nullptr;  // [n_tokens, padded]: q arranged for int4 weights
  const int32_t* o = nullptr;  // [n_tokens, padded / 32]: int4 block offsets
  int64_t padded = 0;
};

// The bf16 prefill product's row block: weights kept in L2 while every
// token passes (see bf16_rows_times_tokens).
constexpr int64_t kBf16BlockBytes = 256 * 1024;

bool is_quantized(const MatrixView& w) {
  return w.dtype == DType::kQ8 || w.dtype == DType::kQ4;
}

// Scratch of the calling thread (the engine thread in the server), grown
// once to the largest step; during the call the workers write and read it
// through the pointers taken here.
Activations prepare(const float* x, int64_t n_tokens, int64_t cols, bool quantized, bool for_int4,
                    ThreadPool& pool) {
  Activations a{x, n_tokens, cols};
  if (!quantized) return a;
  thread_local AlignedBuffer<int8_t> q, qi;
  thread_local AlignedBuffer<float> s;
  thread_local AlignedBuffer<int32_t> o;
  a.padded = quant_padded_cols(cols);
  const size_t nq = static_cast<size_t>(n_tokens * a.padded);
  if (q.size() < nq) q.resize(nq);
  if (s.size() < nq / kQuantBlock) s.resize(nq / kQuantBlock);
  if (for_int4 && qi.size() < nq) qi.resize(nq);
  if (o.size() < nq / kQuantBlock) o.resize(nq / kQuantBlock);
  int8_t* qd = q.data();
  float* sd = s.data();
  int32_t* od = o.data();
  int8_t* qid = qi.data();  // the workers see their own thread_locals, not these
  const int64_t padded = a.padded;
  auto quantize = [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t i = static_cast<int64_t>(t);
      quantize_row_q8(x + i * cols, cols, qd + i * padded, sd + i * (padded / kQuantBlock));
      if (for_int4) {
        q4_prepare_activations(qd + i * padded, padded, qid + i * padded,
                               od + i * (padded / kQuantBlock));
      }
    }
  };
  if (n_tokens == 1) {
    quantize(0, 1, 0);
  } else {
    pool.parallel_for(static_cast<size_t>(n_tokens), quantize, 4);
  }
  a.q = qd;
  a.s = sd;
  a.qi = qid;
  a.o = od;
  return a;
}

float dot_row(const MatrixView& w, int64_t row, const float* x) {
  switch (w.dtype) {
    case DType::kF32:
      return dot_f32(static_cast<const float*>(w.data) + row * w.cols, x, w.cols);
    case DType::kF16:
      return dot_f16(static_cast<const uint16_t*>(w.data) + row * w.cols, x, w.cols);
    default:
      R1_CHECK_MSG(false, "matmul: unsupported weight dtype");
  }
  return 0.0f;
}

// bf16 rows [begin, end) against every token in tiles of up to 4 rows x 3
// tokens: each widened weight vector serves 3 tokens and each activation
// vector every row of the tile.
void bf16_rows_times_tokens(const MatrixView& w, int64_t begin, int64_t end, const Activations& a,
                            float* y, int64_t y_stride, int64_t y_col0) {
  const auto* wd = static_cast<const uint16_t*>(w.data);
  // Decode: one token takes all of the thread's rows in one call, which
  // reads them as a few long streams (see rows_one_token).
  if (a.n_tokens == 1) {
    return dot_bf16_rows(wd + begin * w.cols, w.cols, static_cast<int>(end - begin), a.x, w.cols,
                         y + begin - y_col0);
  }
  // Prefill: 4 rows x 3 tokens, whose 12 accumulators, 3 activation
  // vectors and 1 widened weight vector fill the 16 registers (3 x 3 held
  // 3 weight vectors: pp512 of the 1.5b shape 24-32 against 29-37 tok/s in
  // six paired runs). Rows go in blocks of about 256 KB of weights (kept in
  // L2) against one triple of tokens at a time, so every token's
  // activations come from L3 once per block; a 1536-wide triple stays in
  // L1 while the block's rows pass (down_proj's, 105 KB, comes from L2).
  // gate/up arrive here in matmul_silu_mul's chunks of 16 rows. (Before:
  // 96 KB of rows against 96 KB of tokens, so the activations came from
  // L3 once per 30 rows of a 1536-wide product and per 3 rows of
  // down_proj.)
  const int64_t rows_per_tile = a.n_tokens < 3 ? 1 : 4;
  const int64_t block_rows = std::max<int64_t>(
      rows_per_tile, kBf16BlockBytes / (w.cols * 2) / rows_per_tile * rows_per_tile);
  for (int64_t r0 = begin; r0 < end; r0 += block_rows) {
    const int64_t r1 = std::min(end, r0 + block_rows);
    for (int64_t t = 0; t < a.n_tokens; t += 3) {
      const int n_x = static_cast<int>(std::min<int64_t>(3, a.n_tokens - t));
      const float* x[3];
      for (int k = 0; k < n_x; ++k) x[k] = a.x + (t + k) * a.cols;
      for (int64_t o = r0; o < r1; o += rows_per_tile) {
        const int n_rows = static_cast<int>(std::min(rows_per_tile, r1 - o));
        float out[12];
        dot_bf16_tile(wd + o * w.cols, w.cols, n_rows, x, n_x, w.cols, out);
        for (int r = 0; r < n_rows; ++r) {
          for (int k = 0; k < n_x; ++k) y[(t + k) * y_stride + o + r - y_col0] = out[r * n_x + k];
        }
      }
    }
  }
}

// Rows [begin, end) of w against every token: y[t * y_stride + o - y_col0].
// bf16 weights: tiles (above). f32 / f16 weights: one dot product per (row,
// token), row-major so the row is hot in L1 for all tokens. Quantised
// weights: the kernel shape that fits (dot_q8.cpp explains why every shape
// gives the same bits):
//   fewer than 4 tokens (decode): the whole range x 1 token per call;
//   otherwise: pairs of rows x 4 tokens, tokens tiled so a tile's
//     activations stay in L2 while the thread's rows pass. (int8 in groups
//     once took 1 row x all tokens: for a 1536-column product 512 tokens'
//     activations, 786 KB, came from L3 for every row; SmolLM2 Q4_1 pp512
//     at int8 /32, 2 threads, went from 0.74-0.82x llama.cpp to ...)
void rows_times_tokens(const MatrixView& w, int64_t begin, int64_t end, const Activations& a,
                       float* y, int64_t y_stride, int64_t y_col0 = 0) {
  if (w.dtype == DType::kBF16) {
    bf16_rows_times_tokens(w, begin, end, a, y, y_stride, y_col0);
    return;
  }
  if (!is_quantized(w)) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t t = 0; t < a.n_tokens; ++t)
        y[t * y_stride + o - y_col0] = dot_row(w, o, a.x + t * a.cols);
    }
    return;
  }
  const int64_t padded = a.padded;
  const int64_t n_blocks = padded / kQuantBlock;
  const bool q8 = w.dtype == DType::kQ8;
  const int64_t row_bytes = q8 ? padded : padded / 2;
  const int64_t n_scales = q8 ? padded / w.group_size : n_blocks;
  const auto* wd = static_cast<const uint8_t*>(w.data);
  const int8_t* x_base = q8 ? a.q : a.qi;  // int4 takes the arranged copy
  auto xq = [&](int64_t t) { return x_base + t * padded; };
  auto xs = [&](int64_t t) { return a.s + t * n_blocks; };
  auto xo = [&](int64_t t) { return a.o + t * n_blocks; };
  // Rows [r0, r1) x token t, in one call, so the kernel sees the whole range:
  // it reads it as a few long sequential streams, which the hardware
  // prefetchers follow (and the int8 VNNI kernel prepares the token's
  // activations once for all of the rows). Adjacent rows taken together
  // instead are as many short streams, 0.75-9 KB each, and on a Zen 5 core
  // four of them halve what one thread gets from DRAM (lm_head shape, 2
  // threads: int8 21 -> 56 GB/s, bf16 26 -> 42, int4 23 -> 39;
  // docs/PERFORMANCE.md).
  auto rows_one_token = [&](int64_t r0, int64_t r1, int64_t t) {
    const int n = static_cast<int>(r1 - r0);
    float* out = y + t * y_stride + r0 - y_col0;
    if (q8) {
      dot_q8_rows(reinterpret_cast<const int8_t*>(wd + r0 * row_bytes), row_bytes,
                  static_cast<const float*>(w.scales) + r0 * n_scales, n_scales, n, w.group_size,
                  xq(t), xs(t), padded, out);
    } else {
      dot_q4_rows(wd + r0 * row_bytes, row_bytes,
                  static_cast<const uint16_t*>(w.scales) + r0 * n_scales, n_scales, n, xq(t), xs(t),
                  xo(t), padded, out);
    }
  };
  // Row o x tokens [t0, t1), four tokens per call.
  auto one_row_tokens = [&](int64_t o, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t += 4) {
      const int n = static_cast<int>(std::min<int64_t>(4, t1 - t));
      const int8_t* q[4];
      const float* sc[4];
      const int32_t* off[4];
      for (int k = 0; k < n; ++k) {
        q[k] = xq(t + k);
        sc[k] = xs(t + k);
        off[k] = xo(t + k);
      }
      float out[4];
      if (q8) {
        dot_q8(reinterpret_cast<const int8_t*>(wd + o * row_bytes),
               static_cast<const float*>(w.scales) + o * n_scales, w.group_size, q, sc, n, padded,
               out);
      } else {
        dot_q4(wd + o * row_bytes, static_cast<const uint16_t*>(w.scales) + o * n_scales, q, sc,
               off, n, padded, out);
      }
      for (int k = 0; k < n; ++k) y[(t + k) * y_stride + o - y_col0] = out[k];
    }
  };

  if (a.n_tokens < 4) {
    for (int64_t t = 0; t < a.n_tokens; ++t) rows_one_token(begin, end, t);
    return;
  }
  constexpr int64_t kTokenTile = 64;  // 64 x 1536 bytes for the 1.5b shape
  const auto* ws = static_cast<const float*>(w.scales);
  const auto* ws4 = static_cast<const uint16_t*>(w.scales);
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokenTile) {
    const int64_t t1 = std::min(a.n_tokens, t0 + kTokenTile);
    const int64_t t4 = t0 + (t1 - t0) / 4 * 4;
    int64_t o = begin;
    for (; o + 2 <= end; o += 2) {
      for (int64_t t = t0; t < t4; t += 4) {
        const int8_t* q[4] = {xq(t), xq(t + 1), xq(t + 2), xq(t + 3)};
        const float* sc[4] = {xs(t), xs(t + 1), xs(t + 2), xs(t + 3)};
        float out[8];
        if (q8) {
          dot_q8_2x4(reinterpret_cast<const int8_t*>(wd + o * row_bytes),
                     reinterpret_cast<const int8_t*>(wd + (o + 1) * row_bytes), ws + o * n_scales,
                     ws + (o + 1) * n_scales, w.group_size, q, sc, padded, out);
        } else {
          const int32_t* off[4] = {xo(t), xo(t + 1), xo(t + 2), xo(t + 3)};
          dot_q4_2x4(wd + o * row_bytes, wd + (o + 1) * row_bytes, ws4 + o * n_scales,
                     ws4 + (o + 1) * n_scales, q, sc, off, padded, out);
        }
        for (int k = 0; k < 4; ++k) {
          y[(t + k) * y_stride + o - y_col0] = out[k];
          y[(t + k) * y_stride + o + 1 - y_col0] = out[4 + k];
        }
      }
      for (int64_t t = t4; t < t1; ++t) rows_one_token(o, o + 2, t);
    }
    if (o < end) one_row_tokens(o, t0, t1);
  }
}

// Rows [0, n_rows) across the pool: fn(begin, end) over disjoint ranges.
// Prefill splits them statically, one range per thread. Decode hands out
// chunks in turn: the two threads of a shared machine seldom get the same
// memory bandwidth at the same moment, and with one static range each the
// faster one waited for the other at the end of every product (about 5% of
// decode). Chunks shrink as the rows run out (guided), so the threads
// finish close together while the first chunks stay long: the decode
// kernels read a chunk as a few long sequential streams. A row's result
// does not depend on which thread computes it.
template <typename Fn>
void for_row_ranges(ThreadPool& pool, int64_t n_rows, int64_t n_tokens, Fn&& fn) {
  const int n_threads = pool.n_threads();
  if (n_tokens >= 4 || n_threads == 1) {
    pool.parallel_for(
        static_cast<size_t>(n_rows),
        [&](size_t begin, size_t end, int) {
          fn(static_cast<int64_t>(begin), static_cast<int64_t>(end));
        },
        16);
    return;
  }
  // Each chunk: a thread's share of the rows still left, at least 64 rows.
  // Few chunks (about 5 for 2048 rows) restart the streams seldom; smaller
  // ones (a quarter share, at least 16 rows) gave 2048 x 1536 int8 products
  // 44-55 GB/s against 57-62 (28 distinct matrices in turn, two threads).
  std::atomic<int64_t> next{0};
  pool.parallel_for(
      static_cast<size_t>(n_threads),
      [&](size_t, size_t, int) {
        int64_t r0 = next.load(std::memory_order_relaxed);
        for (;;) {
          if (r0 >= n_rows) return;
          const int64_t chunk = std::max<int64_t>(64, (n_rows - r0) / n_threads);
          const int64_t r1 = std::min(n_rows, r0 + chunk);
          if (next.compare_exchange_weak(r0, r1, std::memory_order_relaxed)) {
            fn(r0, r1);
            r0 = next.load(std::memory_order_relaxed);
          }
        }
      },
      1);
}

}  // namespace

void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y,
            ThreadPool& pool) {
  const MatmulOutput out{w, bias, y};
  matmul_multi(x, n_tokens, std::span(&out, 1), pool);
}

void matmul_multi(const float* x, int64_t n_tokens, std::span<const MatmulOutput> outs,
                  ThreadPool& pool) {
  R1_CHECK(!outs.empty());
  const int64_t cols = outs[0].w.cols;
  int64_t total_rows = 0;
  bool quantized = false, int4 = false;
  for (const MatmulOutput& m : outs) {
    R1_CHECK_MSG(m.w.cols == cols, "matmul_multi: the products must share their input");
    total_rows += m.w.rows;
    quantized = quantized || is_quantized(m.w);
    int4 = int4 || m.w.dtype == DType::kQ4;
  }
  const Activations a = prepare(x, n_tokens, cols, quantized, int4, pool);
  for_row_ranges(pool, total_rows, n_tokens, [&](int64_t begin, int64_t end) {
    // Global row r -> (output, row within it).
    size_t m = 0;
    int64_t first = 0;
    for (int64_t r = begin; r < end;) {
      while (r >= first + outs[m].w.rows) first += outs[m++].w.rows;
      const MatmulOutput& out = outs[m];
      // This thread's rows of this output: [o_begin, o_end).
      const int64_t o_begin = r - first;
      const int64_t o_end = std::min(out.w.rows, end - first);
      rows_times_tokens(out.w, o_begin, o_end, a, out.y, out.w.rows);
      if (out.bias != nullptr) {
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t o = o_begin; o < o_end; ++o) out.y[t * out.w.rows + o] += out.bias[o];
        }
      }
      r = first + o_end;
    }
  });
}

void matmul_silu_mul(const float* x, const MatrixView& gate, const MatrixView& up, int64_t n_tokens,
                     float* out, ThreadPool& pool) {
  R1_CHECK(gate.rows == up.rows && gate.cols == up.cols);
  const int64_t n = gate.rows;
  const Activations a = prepare(x, n_tokens, gate.cols, is_quantized(gate) || is_quantized(up),
                                gate.dtype == DType::kQ4 || up.dtype == DType::kQ4, pool);
  for_row_ranges(pool, n, n_tokens, [&](int64_t begin, int64_t end) {
    // Chunks of rows: the gate products land in `out`, the up products in
    // a per-thread buffer, then they are combined in place. Prefill takes 16
    // rows at a time, so the activations pass each weight row while it is in
    // L1. Decode takes the whole range: its kernels read a range as four
    // long streams (row_runs.h), and 16-row chunks would cut them to 6 KB
    // each, switching matrices between chunks (int8 gate_up at 32 against 55
    // GB/s for down in the same run).
    const int64_t chunk = n_tokens < 4 ? end - begin : 16;
    thread_local AlignedBuffer<float> up_rows;
    const size_t need = static_cast<size_t>(n_tokens * chunk);
    if (up_rows.size() < need) up_rows.resize(need);
    for (int64_t o0 = begin; o0 < end; o0 += chunk) {
      const int64_t o1 = std::min(end, o0 + chunk);
      rows_times_tokens(gate, o0, o1, a, out, n);
      // up_rows[t * chunk + (o - o0)]
      rows_times_tokens(up, o0, o1, a, up_rows.data(), chunk, o0);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t o = o0; o < o1; ++o) {
          const float g = out[t * n + o];
          out[t * n + o] = g / (1.0f + std::exp(-g)) * up_rows[t * chunk + (o - o0)];
        }
      }
    }
  });
}

}  // namespace r1::kernels::cpu
