#include <cmath>

#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void rope(float* x, const int32_t* positions, const float* inv_freq, int64_t n_tokens,
          int64_t n_heads, int64_t head_dim) {
  int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        // The angle is rounded to f32 like Hugging Face's (see cpu/rope.cpp).
        const double angle = static_cast<float>(positions[t]) * inv_freq[i];
        double c = std::cos(angle), s = std::sin(angle);
        double a = v[i], b = v[i + half];
        v[i] = static_cast<float>(a * c - b * s);
        v[i + half] = static_cast<float>(b * c + a * s);
      }
    }
  }
}

}  // namespace r1::kernels::reference
