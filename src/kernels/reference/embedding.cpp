#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void embedding(const MatrixView& w, const int32_t* ids, int64_t n, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < w.cols; ++c) out[t * w.cols + c] = matrix_at(w, ids[t], c);
  }
}

}  // namespace r1::kernels::reference
