// Element types of weights and activations, and scalar conversions between
// them. bf16 is the top half of an IEEE f32; f16 is IEEE binary16.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace r1 {

// kQ8 and kQ4 are r1serve's quantised weight layouts (kernels/quant.h): they
// never appear in files, only in weights quantised at load.
enum class DType { kF32, kF16, kBF16, kI8, kI32, kI64, kU8, kQ8, kQ4 };

// Bytes per element; 0 for kQ4 (two values per byte, plus scales).
size_t dtype_size(DType t);
// "f32", "f16", "bf16", ...
std::string_view dtype_name(DType t);
// Parses the CLI names ("f32", "bf16", "f16", case-insensitive).
std::optional<DType> parse_dtype(std::string_view name);
// What --dtype accepts: the above plus "int8" and "int4" (quantised at load).
std::optional<DType> parse_weight_dtype(std::string_view name);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even, as PyTorch's .to(torch.bfloat16); NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
// Round to nearest even; overflow becomes infinity.
uint16_t f32_to_f16(float f);

}  // namespace r1
