#include <cmath>

#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void rmsnorm(const float* x, const float* weight, float eps, int64_t n_rows, int64_t dim,
             float* y) {
  for (int64_t r = 0; r < n_rows; ++r) {
    double sum_sq = 0.0;
    for (int64_t i = 0; i < dim; ++i)
      sum_sq += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) {
      y[r * dim + i] = static_cast<float>(x[r * dim + i] * inv * weight[i]);
    }
  }
}

}  // namespace r1::kernels::reference
