#include "core/check.h"
#include "kernels/ops.h"

namespace r1::kernels {

float matrix_at(const MatrixView& m, int64_t r, int64_t c) {
  int64_t i = r * m.cols + c;
  switch (m.dtype) {
    case DType::kF32:
      return static_cast<const float*>(m.data)[i];
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(m.data)[i]);
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(m.data)[i]);
    default:
      R1_CHECK_MSG(false, "matrix_at: weight dtype must be f32, bf16 or f16");
  }
  return 0.0f;
}

}  // namespace r1::kernels
