// The CPU's arithmetic peaks, measured with register-resident loops of the
// widest multiply-add it has for a data type: what a matrix kernel would
// reach doing nothing but multiply-adds, with every operand in a register.
// `bench --offline` prints prefill and batched decode as fractions of them,
// measured in the same run (a peak moves with the clock, which moves with
// the machine's load and temperature).
#pragma once

#include <string>

#include "core/thread_pool.h"

namespace r1::kernels::cpu {

struct ArithmeticPeak {
  double macs_per_second = 0.0;  // multiply-adds per second, all threads of the pool
  std::string instruction;       // the loop's instruction, e.g. "vpdpbusd zmm"
};

// int8 x int8 into int32: vpdpbusd (AVX-512 VNNI), else vpmaddubsw then
// vpmaddwd into int32 (AVX2), else a scalar loop. A multiply-add is one
// product of two 8-bit values added into a 32-bit sum.
ArithmeticPeak measure_int8_peak(ThreadPool& pool);

// bf16 x bf16 into f32: vdpbf16ps (AVX-512 BF16), else f32 FMAs (what a
// kernel runs after widening bf16 to f32; AVX-512 or AVX2), else scalar.
ArithmeticPeak measure_bf16_peak(ThreadPool& pool);

}  // namespace r1::kernels::cpu
