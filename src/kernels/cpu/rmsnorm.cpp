#include <cmath>

#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

void rmsnorm(const float* x, const float* weight, float eps, int64_t n_rows, int64_t dim, float* y,
             ThreadPool& pool) {
  pool.parallel_for(static_cast<size_t>(n_rows), [&](size_t begin, size_t end, int) {
    for (int64_t r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      float sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum_sq)
      for (int64_t i = 0; i < dim; ++i) sum_sq += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
#pragma omp simd
      for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * weight[i];
    }
  });
}

}  // namespace r1::kernels::cpu
