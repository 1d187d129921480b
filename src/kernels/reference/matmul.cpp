#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = bias != nullptr ? bias[o] : 0.0;
      for (int64_t i = 0; i < w.cols; ++i) {
        acc += static_cast<double>(x[t * w.cols + i]) * matrix_at(w, o, i);
      }
      y[t * w.rows + o] = static_cast<float>(acc);
    }
  }
}

}  // namespace r1::kernels::reference
