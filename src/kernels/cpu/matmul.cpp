#include <cstdint>

#include "core/check.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {
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
}  // namespace

// Threads split the output rows; each thread walks its rows once and dots
// every token against the row while it is hot in cache, so the weights
// stream from memory once per call.
void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y,
            ThreadPool& pool) {
  const int64_t n_out = w.rows;
  pool.parallel_for(
      static_cast<size_t>(n_out),
      [&](size_t begin, size_t end, int) {
        for (int64_t o = static_cast<int64_t>(begin); o < static_cast<int64_t>(end); ++o) {
          const float b = bias != nullptr ? bias[o] : 0.0f;
          for (int64_t t = 0; t < n_tokens; ++t) {
            y[t * n_out + o] = dot_row(w, o, x + t * w.cols) + b;
          }
        }
      },
      16);
}

}  // namespace r1::kernels::cpu
