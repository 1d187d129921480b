#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

void embedding(const MatrixView& w, const int32_t* ids, int64_t n, float* out, ThreadPool& pool) {
  pool.parallel_for(static_cast<size_t>(n), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t) {
      float* row = out + static_cast<int64_t>(t) * w.cols;
      const int64_t base = static_cast<int64_t>(ids[t]) * w.cols;
      switch (w.dtype) {
        case DType::kF32:
          for (int64_t c = 0; c < w.cols; ++c) row[c] = static_cast<const float*>(w.data)[base + c];
          break;
        case DType::kBF16:
          for (int64_t c = 0; c < w.cols; ++c) {
            row[c] = bf16_to_f32(static_cast<const uint16_t*>(w.data)[base + c]);
          }
          break;
        default:
          for (int64_t c = 0; c < w.cols; ++c) row[c] = matrix_at(w, ids[t], c);
      }
    }
  });
}

}  // namespace r1::kernels::cpu
