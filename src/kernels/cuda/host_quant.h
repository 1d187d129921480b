// The host side of the CUDA backend's weight formats, in plain C++ (built and
// unit-tested without a GPU): the weight-only int8 and FP8 E4M3
// quantisation done at load, which the device kernels
// (quant_gemv, dequantize) read.
#pragma once

#include <cstdint>

namespace r1::kernels::cuda {

using bf16_t = uint16_t;  // the bits of a bf16

enum class QuantKind : uint8_t { kInt8, kFp8E4M3 };

// Per row: scale = max|w| / 127 (int8) or / 448 (E4M3, its largest finite
// value), q = w / scale rounded to nearest (ties to even), so w ~ q * scale.
// A row of zeros gets scale 1. w: [rows, cols] f32; q: [rows, cols] bytes;
// scales: [rows]. With `tensor_amax` > 0 every row uses the scale that
// amax gives (one scale for the whole matrix, as cuBLASLt's FP8 products
// take it).
void quantize_rows(QuantKind kind, const float* w, int64_t rows, int64_t cols, uint8_t* q,
                   float* scales, float tensor_amax = 0.0f);

// The value of one stored byte (before the row's scale).
float dequantize_value(QuantKind kind, uint8_t v);

// E4M3 (OCP FP8): sign, 4 exponent bits (bias 7), 3 mantissa bits; no
// infinities; S.1111.111 is NaN; largest finite 448.
float fp8_e4m3_to_float(uint8_t v);
// Round to nearest even, saturating at +-448.
uint8_t float_to_fp8_e4m3(float f);

}  // namespace r1::kernels::cuda
