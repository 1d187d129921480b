// Matrix products y = x W^T for every weight dtype. Threads split the output
// rows; each thread walks its rows once and takes every token against a row
// while the row is hot in L1, so the weights stream from memory once per
// call whatever the number of tokens. For int8/int4 weights the activations
// are first quantised once per call (blocks of 32, quant.h), and each weight
// block is applied to up to four tokens from registers.
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
  const int8_t* q = nullptr;  // [n_tokens, padded]
  const float* s = nullptr;   // [n_tokens, padded / 32]
  int64_t padded = 0;
};

bool is_quantized(const MatrixView& w) {
  return w.dtype == DType::kQ8 || w.dtype == DType::kQ4;
}

// Scratch of the calling thread (the engine thread in the server), grown
// once to the largest step; the workers only read it during the call.
Activations prepare(const float* x, int64_t n_tokens, int64_t cols, bool quantized,
                    ThreadPool& pool) {
  Activations a{x, n_tokens, cols};
  if (!quantized) return a;
  thread_local AlignedBuffer<int8_t> q;
  thread_local AlignedBuffer<float> s;
  a.padded = quant_padded_cols(cols);
  const size_t nq = static_cast<size_t>(n_tokens * a.padded);
  if (q.size() < nq) q.resize(nq);
  if (s.size() < nq / kQuantBlock) s.resize(nq / kQuantBlock);
  int8_t* qd = q.data();
  float* sd = s.data();
  const int64_t padded = a.padded;
  auto quantize = [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t) {
      const int64_t i = static_cast<int64_t>(t);
      quantize_row_q8(x + i * cols, cols, qd + i * padded, sd + i * (padded / kQuantBlock));
    }
  };
  if (n_tokens == 1) {
    quantize(0, 1, 0);
  } else {
    pool.parallel_for(static_cast<size_t>(n_tokens), quantize, 4);
  }
  a.q = qd;
  a.s = sd;
  return a;
}

float dot_row(const MatrixView& w, int64_t row, const float* x) {
  switch (w.dtype) {
    case DType::kF32:
      return dot_f32(static_cast<const float*>(w.data) + row * w.cols, x, w.cols);
    case DType::kBF16:
      return dot_bf16(static_cast<const uint16_t*>(w.data) + row * w.cols, x, w.cols);
    case DType::kF16:
      return dot_f16(static_cast<const uint16_t*>(w.data) + row * w.cols, x, w.cols);
    default:
      R1_CHECK_MSG(false, "matmul: unsupported weight dtype");
  }
  return 0.0f;
}

// y[t * y_stride] = row `o` of w . x[t] for every token.
void row_times_tokens(const MatrixView& w, int64_t o, const Activations& a, float* y,
                      int64_t y_stride) {
  if (!is_quantized(w)) {
    for (int64_t t = 0; t < a.n_tokens; ++t) y[t * y_stride] = dot_row(w, o, a.x + t * a.cols);
    return;
  }
  const int64_t padded = a.padded;
  const int64_t n_blocks = padded / kQuantBlock;
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += 4) {
    const int n = static_cast<int>(std::min<int64_t>(4, a.n_tokens - t0));
    const int8_t* xq[4];
    const float* xs[4];
    for (int k = 0; k < n; ++k) {
      xq[k] = a.q + (t0 + k) * padded;
      xs[k] = a.s + (t0 + k) * n_blocks;
    }
    float out[4];
    if (w.dtype == DType::kQ8) {
      const int64_t n_groups = padded / w.group_size;
      dot_q8(static_cast<const int8_t*>(w.data) + o * padded,
             static_cast<const float*>(w.scales) + o * n_groups, w.group_size, xq, xs, n, padded,
             out);
    } else {
      dot_q4(static_cast<const uint8_t*>(w.data) + o * (padded / 2),
             static_cast<const uint16_t*>(w.scales) + o * n_blocks, xq, xs, n, padded, out);
    }
    for (int k = 0; k < n; ++k) y[(t0 + k) * y_stride] = out[k];
  }
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
  bool quantized = false;
  for (const MatmulOutput& m : outs) {
    R1_CHECK_MSG(m.w.cols == cols, "matmul_multi: the products must share their input");
    total_rows += m.w.rows;
    quantized = quantized || is_quantized(m.w);
  }
  const Activations a = prepare(x, n_tokens, cols, quantized, pool);
  pool.parallel_for(
      static_cast<size_t>(total_rows),
      [&](size_t begin, size_t end, int) {
        // Global row r -> (output, row within it).
        size_t m = 0;
        int64_t first = 0;
        for (int64_t r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
          while (r >= first + outs[m].w.rows) first += outs[m++].w.rows;
          const MatmulOutput& out = outs[m];
          const int64_t o = r - first;
          row_times_tokens(out.w, o, a, out.y + o, out.w.rows);
          if (out.bias != nullptr) {
            for (int64_t t = 0; t < n_tokens; ++t) out.y[t * out.w.rows + o] += out.bias[o];
          }
        }
      },
      16);
}

void matmul_silu_mul(const float* x, const MatrixView& gate, const MatrixView& up, int64_t n_tokens,
                     float* out, ThreadPool& pool) {
  R1_CHECK(gate.rows == up.rows && gate.cols == up.cols);
  const int64_t n = gate.rows;
  const Activations a =
      prepare(x, n_tokens, gate.cols, is_quantized(gate) || is_quantized(up), pool);
  pool.parallel_for(
      static_cast<size_t>(n),
      [&](size_t begin, size_t end, int) {
        // Per-thread: the up products of one row for every token, before the
        // gate products land in `out` and are combined in place.
        thread_local AlignedBuffer<float> up_row;
        if (up_row.size() < static_cast<size_t>(n_tokens)) {
          up_row.resize(static_cast<size_t>(n_tokens));
        }
        for (int64_t o = static_cast<int64_t>(begin); o < static_cast<int64_t>(end); ++o) {
          row_times_tokens(gate, o, a, out + o, n);
          row_times_tokens(up, o, a, up_row.data(), 1);
          for (int64_t t = 0; t < n_tokens; ++t) {
            const float g = out[t * n + o];
            out[t * n + o] = g / (1.0f + std::exp(-g)) * up_row[t];
          }
        }
      },
      16);
}

}  // namespace r1::kernels::cpu
