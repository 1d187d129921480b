#include <cmath>
#include <vector>

#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

// The angle is the f32 product position * inv_freq, as in Hugging Face and
// vLLM (at position 100000 it differs from the exact product by ~2e-3 rad;
// matching the reference implementations matters more than exactness here).
// cos/sin are computed once per token and applied to every head.
void rope(float* x, const int32_t* positions, const float* inv_freq, int64_t n_tokens,
          int64_t n_heads, int64_t head_dim, ThreadPool& pool) {
  const int64_t half = head_dim / 2;
  pool.parallel_for(static_cast<size_t>(n_tokens), [&](size_t begin, size_t end, int) {
    thread_local std::vector<float> cs;
    cs.resize(static_cast<size_t>(2 * half));
    for (int64_t t = static_cast<int64_t>(begin); t < static_cast<int64_t>(end); ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        cs[i] = std::cos(angle);
        cs[half + i] = std::sin(angle);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half], c = cs[i], s = cs[half + i];
          v[i] = a * c - b * s;
          v[i + half] = b * c + a * s;
        }
      }
    }
  });
}

}  // namespace r1::kernels::cpu
