// The CUDA backend's host-side weight formats (kernels/cuda/host_quant.h),
// tested without a GPU: FP8 E4M3 decoding against the format's definition
// written out independently here, encoding against a brute-force nearest
// search over all 254 finite codes, and the per-row int8/FP8 quantisation's
// error bound.
#include "kernels/cuda/host_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace r1::kernels::cuda {
namespace {

// E4M3 by the OCP table: exponent e (bias 7), mantissa m; e = 0 subnormal.
double e4m3_value(int code) {
  const int sign = (code >> 7) & 1, e = (code >> 3) & 15, m = code & 7;
  const double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
  return sign ? -mag : mag;
}

TEST(HostQuantTest, Fp8DecodesEveryCodeByTheFormatsDefinition) {
  for (int code = 0; code < 256; ++code) {
    const float got = fp8_e4m3_to_float(static_cast<uint8_t>(code));
    if ((code & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(got)) << code;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), e4m3_value(code)) << code;
  }
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
}

TEST(HostQuantTest, Fp8EncodesToTheNearestCodeTiesToEven) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> mag(-10.0f, 9.0f);
  std::vector<float> xs = {0.0f,     -0.0f,   448.0f,  500.0f,  -1e9f, 0x1p-9f, 0x1p-10f,
                           0x3p-11f, 0x1p-6f, 1.0625f, 1.1875f, 17.0f, 240.0f,  232.0f};
  for (int i = 0; i < 20000; ++i) {
    const float x = std::exp2(mag(rng)) * (rng() % 2 ? 1.0f : -1.0f);
    xs.push_back(x);
  }
  for (float x : xs) {
    // Brute force over the finite codes of x's sign: the nearest value, the
    // code with an even mantissa on a tie; beyond 448 it saturates.
    const int sign = std::signbit(x) ? 0x80 : 0;
    int best = -1;
    double best_err = INFINITY;
    for (int c = 0; c < 0x7F; ++c) {
      const double err = std::fabs(e4m3_value(c) - std::fabs(static_cast<double>(x)));
      if (err < best_err || (err == best_err && (c & 1) == 0)) {
        best = c;
        best_err = err;
      }
    }
    EXPECT_EQ(float_to_fp8_e4m3(x), sign | best) << x;
  }
}

TEST(HostQuantTest, RowQuantisationStaysWithinHalfAStep) {
  const int64_t rows = 7, cols = 131;
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& x : w) x = d(rng);
  for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(3 * cols + c)] = 0.0f;  // a zero row
  for (QuantKind kind : {QuantKind::kInt8, QuantKind::kFp8E4M3}) {
    std::vector<uint8_t> q(w.size());
    std::vector<float> scales(static_cast<size_t>(rows));
    quantize_rows(kind, w.data(), rows, cols, q.data(), scales.data());
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0.0f;
      for (int64_t c = 0; c < cols; ++c) amax = std::fmax(amax, std::fabs(w[r * cols + c]));
      for (int64_t c = 0; c < cols; ++c) {
        const float x = w[r * cols + c];
        const float back = dequantize_value(kind, q[r * cols + c]) * scales[r];
        // int8: half a step of amax/127. E4M3: 3 mantissa bits, half an ulp
        // is 1/16 relative (plus the subnormal step near zero).
        const float bound = kind == QuantKind::kInt8
                                ? amax / 127.0f * 0.5f + 1e-9f
                                : std::fabs(x) / 16.0f + scales[r] * 0x1p-10f + 1e-9f;
        EXPECT_LE(std::fabs(back - x), bound) << "row " << r << " col " << c;
      }
    }
    EXPECT_EQ(scales[3], 1.0f);
  }
}

TEST(HostQuantTest, OneScaleForTheWholeMatrix) {
  const std::vector<float> w = {0.5f, -2.0f, 1.0f, 0.25f, 4.0f, -1.0f};
  std::vector<uint8_t> q(w.size());
  std::vector<float> scales(2);
  quantize_rows(QuantKind::kFp8E4M3, w.data(), 2, 3, q.data(), scales.data(), 4.0f);
  EXPECT_EQ(scales[0], 4.0f / 448.0f);
  EXPECT_EQ(scales[1], 4.0f / 448.0f);
  // Powers of two stay exact: 4 -> 448 (the largest finite), 0.25 -> 28.
  EXPECT_EQ(fp8_e4m3_to_float(q[4]), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(q[3]), 28.0f);
}

}  // namespace
}  // namespace r1::kernels::cuda
