#include "kernels/cuda/host_quant.h"

#include <cmath>

namespace r1::kernels::cuda {

float fp8_e4m3_to_float(uint8_t v) {
  const bool negative = (v & 0x80) != 0;
  const int exponent = (v >> 3) & 0x0F;
  const int mantissa = v & 0x07;
  float x;
  if (exponent == 0x0F && mantissa == 0x07) {
    x = std::nanf("");
  } else if (exponent == 0) {
    x = std::ldexp(static_cast<float>(mantissa) / 8.0f, -6);  // subnormal
  } else {
    x = std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  }
  return negative ? -x : x;
}

uint8_t float_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7F;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  constexpr uint8_t kMaxFinite = 0x7E;  // 1.75 * 2^8 = 448
  if (a >= 448.0f) return static_cast<uint8_t>(sign | kMaxFinite);
  int code;
  if (a < 0x1p-6f) {
    // Subnormals are multiples of 2^-9; rounding up to 8 lands exactly on
    // the smallest normal, code 0x08.
    code = static_cast<int>(std::nearbyint(a * 512.0f));
  } else {
    int e2 = 0;
    const float fr = std::frexp(a, &e2);  // a = fr * 2^e2, fr in [0.5, 1)
    int exponent = e2 - 1 + 7;
    int mantissa = static_cast<int>(std::nearbyint((2.0f * fr - 1.0f) * 8.0f));
    if (mantissa == 8) {
      mantissa = 0;
      ++exponent;
    }
    code = exponent << 3 | mantissa;
    if (code > kMaxFinite) code = kMaxFinite;
  }
  return static_cast<uint8_t>(sign | code);
}

void quantize_rows(QuantKind kind, const float* w, int64_t rows, int64_t cols, uint8_t* q,
                   float* scales, float tensor_amax) {
  const float q_max = kind == QuantKind::kInt8 ? 127.0f : 448.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    float amax = tensor_amax;
    if (amax <= 0.0f) {
      for (int64_t c = 0; c < cols; ++c) amax = std::fmax(amax, std::fabs(row[c]));
    }
    const float scale = amax > 0.0f ? amax / q_max : 1.0f;
    scales[r] = scale;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = row[c] / scale;
      if (kind == QuantKind::kInt8) {
        const float rounded = std::nearbyint(std::fmax(-127.0f, std::fmin(127.0f, x)));
        q[r * cols + c] = static_cast<uint8_t>(static_cast<int8_t>(rounded));
      } else {
        q[r * cols + c] = float_to_fp8_e4m3(x);
      }
    }
  }
}

float dequantize_value(QuantKind kind, uint8_t v) {
  return kind == QuantKind::kInt8 ? static_cast<float>(static_cast<int8_t>(v))
                                  : fp8_e4m3_to_float(v);
}

}  // namespace r1::kernels::cuda
