#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

void quantize_activations(const float* x, int64_t cols, int8_t* q, float* scales) {
  const int64_t padded = quant_padded_cols(cols);
  for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
    float amax = 0.0f;
    for (int64_t j = 0; j < kQuantBlock; ++j) {
      const int64_t c = b * kQuantBlock + j;
      if (c < cols) amax = std::max(amax, std::fabs(x[c]));
    }
    scales[b] = amax / 127.0f;
    for (int64_t j = 0; j < kQuantBlock; ++j) {
      const int64_t c = b * kQuantBlock + j;
      // x * (127 / amax), rounded half to even: the kernels compute exactly this.
      q[c] =
          c < cols && amax > 0.0f ? static_cast<int8_t>(std::nearbyint(x[c] * (127.0f / amax))) : 0;
    }
  }
}

void matmul_quantized(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens,
                      float* y) {
  const int64_t padded = quant_padded_cols(w.cols);
  std::vector<int8_t> q(static_cast<size_t>(padded));
  std::vector<float> s(static_cast<size_t>(padded / kQuantBlock));
  for (int64_t t = 0; t < n_tokens; ++t) {
    quantize_activations(x + t * w.cols, w.cols, q.data(), s.data());
    for (int64_t o = 0; o < w.rows; ++o) {
      double acc = bias != nullptr ? bias[o] : 0.0;
      for (int64_t b = 0; b < padded / kQuantBlock; ++b) {
        // The weight's dequantised values times the integer activations:
        // matrix_at(w) = q_w * s_w, so this is s_x * s_w * sum(q_w * q_x).
        double block = 0.0;
        for (int64_t j = 0; j < kQuantBlock; ++j) {
          const int64_t c = b * kQuantBlock + j;
          if (c < w.cols) block += static_cast<double>(matrix_at(w, o, c)) * q[c];
        }
        acc += block * s[b];
      }
      y[t * w.rows + o] = static_cast<float>(acc);
    }
  }
}

}  // namespace r1::kernels::reference
