// Dot products compiled three times (AVX-512, AVX2+FMA+F16C, baseline) and
// chosen by the loader's ifunc resolver on first call.
#include <bit>
#include <cstdint>

#include "kernels/cpu_ops.h"

#define R1_MULTIVERSION \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))

namespace r1::kernels::cpu {

R1_MULTIVERSION float dot_f32(const float* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

R1_MULTIVERSION float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    acc += std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16) * x[i];
  }
  return acc;
}

R1_MULTIVERSION float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  const _Float16* h = reinterpret_cast<const _Float16*>(w);
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += static_cast<float>(h[i]) * x[i];
  return acc;
}

}  // namespace r1::kernels::cpu
