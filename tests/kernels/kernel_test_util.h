// Seeded random inputs and the |a - b| <= atol + rtol * |ref| comparison
// shared by the kernel tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/ops.h"

namespace r1::kernels::testing {

std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// A weight matrix stored in `dtype`, filled with seeded values in [-1, 1).
struct RandomMatrix {
  std::vector<uint8_t> bytes;
  MatrixView view;
};
RandomMatrix random_matrix(int64_t rows, int64_t cols, DType dtype, uint64_t seed);

// An f32 [rows, cols] view of `w` (which must outlive it).
MatrixView f32_view(const std::vector<float>& w, int64_t rows, int64_t cols);

// Fails the test at the first element outside the tolerance.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float atol,
                  float rtol, const std::string& what);

// Runs fn(isa_name) once per CPU kernel path this machine can run (scalar,
// avx2, avx512), restoring the default path after; paths the CPU lacks are
// reported once as skipped.
void for_each_isa(const std::function<void(const std::string&)>& fn);

}  // namespace r1::kernels::testing
