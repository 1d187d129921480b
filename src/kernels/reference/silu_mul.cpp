#include <cmath>

#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void silu_mul(const float* gate, const float* up, int64_t n_tokens, int64_t n, int64_t in_stride,
              int64_t out_stride, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < n; ++i) {
      double g = gate[t * in_stride + i];
      double silu = g / (1.0 + std::exp(-g));
      out[t * out_stride + i] = static_cast<float>(silu * up[t * in_stride + i]);
    }
  }
}

}  // namespace r1::kernels::reference
