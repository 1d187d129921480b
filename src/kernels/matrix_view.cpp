#include "core/check.h"
#include "kernels/ops.h"

namespace r1::kernels {

int64_t matrix_row_bytes(const MatrixView& m) {
  switch (m.dtype) {
    case DType::kQ8:
      return quant_padded_cols(m.cols);
    case DType::kQ4:
      return quant_padded_cols(m.cols) / 2;
    default:
      return m.cols * static_cast<int64_t>(dtype_size(m.dtype));
  }
}

int64_t matrix_bytes(const MatrixView& m) {
  int64_t bytes = m.rows * matrix_row_bytes(m);
  if (m.dtype == DType::kQ8) bytes += m.rows * (quant_padded_cols(m.cols) / m.group_size) * 4;
  if (m.dtype == DType::kQ4) bytes += m.rows * (quant_padded_cols(m.cols) / kQuantBlock) * 2;
  return bytes;
}

float matrix_at(const MatrixView& m, int64_t r, int64_t c) {
  const int64_t i = r * m.cols + c;
  switch (m.dtype) {
    case DType::kF32:
      return static_cast<const float*>(m.data)[i];
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(m.data)[i]);
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(m.data)[i]);
    case DType::kQ8: {
      const int64_t padded = quant_padded_cols(m.cols);
      const int8_t q = static_cast<const int8_t*>(m.data)[r * padded + c];
      const float scale =
          static_cast<const float*>(m.scales)[r * (padded / m.group_size) + c / m.group_size];
      return static_cast<float>(q) * scale;
    }
    case DType::kQ4: {
      const int64_t padded = quant_padded_cols(m.cols);
      const auto* row = static_cast<const uint8_t*>(m.data) + r * (padded / 2);
      const int64_t block = c / kQuantBlock;
      const int q =
          q4_stored(row, padded / kQuantBlock, block, static_cast<int>(c % kQuantBlock)) - 8;
      const float scale =
          f16_to_f32(static_cast<const uint16_t*>(m.scales)[r * (padded / kQuantBlock) + block]);
      return static_cast<float>(q) * scale;
    }
    default:
      R1_CHECK_MSG(false, "matrix_at: not a weight dtype");
  }
  return 0.0f;
}

}  // namespace r1::kernels
