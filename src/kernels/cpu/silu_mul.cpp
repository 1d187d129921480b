#include <cmath>

#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

void silu_mul(const float* gate, const float* up, int64_t n_tokens, int64_t n, int64_t in_stride,
              int64_t out_stride, float* out, ThreadPool& pool) {
  pool.parallel_for(
      static_cast<size_t>(n_tokens * n),
      [&](size_t begin, size_t end, int) {
        for (size_t k = begin; k < end; ++k) {
          const int64_t t = static_cast<int64_t>(k) / n, i = static_cast<int64_t>(k) % n;
          const float g = gate[t * in_stride + i];
          out[t * out_stride + i] = g / (1.0f + std::exp(-g)) * up[t * in_stride + i];
        }
      },
      4096);
}

}  // namespace r1::kernels::cpu
