#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"

namespace r1::kernels {

namespace {

// Round half to even for |v| < 2^22, as std::nearbyint in the default
// rounding mode, but written so the loops around it vectorise (nearbyint is
// a library call per element without SSE4.1): adding and subtracting
// 1.5 * 2^23 leaves v rounded to an integer by the addition itself.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Row r of src as f32, zero padded to `out`'s length.
void widen_row(const MatrixView& src, int64_t r, float* out, int64_t padded) {
  const int64_t n = src.cols;
  switch (src.dtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(src.data) + r * n;
      std::copy(p, p + n, out);
      break;
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(src.data) + r * n;
      for (int64_t c = 0; c < n; ++c) out[c] = bf16_to_f32(p[c]);
      break;
    }
    default: {
      const uint16_t* p = static_cast<const uint16_t*>(src.data) + r * n;
      for (int64_t c = 0; c < n; ++c) out[c] = f16_to_f32(p[c]);
      break;
    }
  }
  std::fill(out + n, out + padded, 0.0f);
}

void quantize_row_to_q8(const float* w, int64_t padded, int64_t group, int8_t* q, float* scales) {
  for (int64_t g0 = 0; g0 < padded; g0 += group) {
    float amax = 0.0f;
    for (int64_t c = g0; c < g0 + group; ++c) amax = std::max(amax, std::fabs(w[c]));
    const float s = amax / 127.0f;
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    scales[g0 / group] = s;
    for (int64_t c = g0; c < g0 + group; ++c) {
      q[c] = static_cast<int8_t>(round_even(std::clamp(w[c] * inv, -127.0f, 127.0f)));
    }
  }
}

void quantize_row_to_q4(const float* w, int64_t padded, uint8_t* q, uint16_t* scales) {
  const int64_t n_blocks = padded / kQuantBlock;
  std::fill(q, q + padded / 2, uint8_t{0});
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* vals = w + b * kQuantBlock;
    float m = 0.0f;
    for (int64_t j = 0; j < kQuantBlock; ++j) {
      if (std::fabs(vals[j]) > std::fabs(m)) m = vals[j];
    }
    // The scale is rounded to f16 first and the values quantised against the
    // rounded scale, so dequantisation uses exactly the scale that chose q.
    const uint16_t s16 = f32_to_f16(m / -8.0f);
    const float s = f16_to_f32(s16);
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    scales[b] = s16;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int stored = static_cast<int>(std::clamp(round_even(vals[j] * inv), -8.0f, 7.0f)) + 8;
      const Q4Slot slot = q4_slot(n_blocks, b, j);  // the layout of ops.h
      q[slot.byte] = static_cast<uint8_t>(q[slot.byte] | (slot.high ? stored << 4 : stored));
    }
  }
}

}  // namespace

OwnedMatrix quantize_matrix(const MatrixView& src, DType to, int64_t group_size, ThreadPool& pool) {
  R1_CHECK_MSG(src.dtype == DType::kF32 || src.dtype == DType::kBF16 || src.dtype == DType::kF16,
               "quantize_matrix: the source must be f32, bf16 or f16");
  return quantize_rows(
      src.rows, src.cols, [&src](int64_t r, float* out) { widen_row(src, r, out, src.cols); }, to,
      group_size, pool);
}

OwnedMatrix quantize_rows(int64_t rows, int64_t cols, const RowSource& src, DType to,
                          int64_t group_size, ThreadPool& pool) {
  const int64_t padded = quant_padded_cols(cols);
  OwnedMatrix out;
  out.dtype = to;
  out.rows = rows;
  out.cols = cols;
  if (to == DType::kQ8) {
    out.group_size = group_size == 0 ? padded : group_size;
    R1_CHECK_MSG(out.group_size % kQuantBlock == 0 && padded % out.group_size == 0,
                 "int8 group size must be a multiple of 32 dividing the padded row");
    out.data.resize(static_cast<size_t>(rows * padded));
    out.scales.resize(static_cast<size_t>(rows * (padded / out.group_size) * 4));
  } else {
    R1_CHECK_MSG(to == DType::kQ4, "quantize_matrix: target must be int8 or int4");
    out.group_size = kQuantBlock;
    out.data.resize(static_cast<size_t>(rows * padded / 2));
    out.scales.resize(static_cast<size_t>(rows * (padded / kQuantBlock) * 2));
  }
  pool.parallel_for(
      static_cast<size_t>(rows),
      [&](size_t begin, size_t end, int) {
        std::vector<float> row(static_cast<size_t>(padded));
        for (int64_t r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
          src(r, row.data());
          std::fill(row.begin() + cols, row.end(), 0.0f);
          if (to == DType::kQ8) {
            const int64_t n_groups = padded / out.group_size;
            quantize_row_to_q8(row.data(), padded, out.group_size,
                               reinterpret_cast<int8_t*>(out.data.data()) + r * padded,
                               reinterpret_cast<float*>(out.scales.data()) + r * n_groups);
          } else {
            quantize_row_to_q4(
                row.data(), padded, out.data.data() + r * (padded / 2),
                reinterpret_cast<uint16_t*>(out.scales.data()) + r * (padded / kQuantBlock));
          }
        }
      },
      16);
  return out;
}

OwnedMatrix cast_matrix(const MatrixView& src, DType to, ThreadPool& pool) {
  return cast_rows(
      src.rows, src.cols, [&src](int64_t r, float* out) { widen_row(src, r, out, src.cols); }, to,
      pool);
}

OwnedMatrix cast_rows(int64_t rows, int64_t cols, const RowSource& src, DType to,
                      ThreadPool& pool) {
  R1_CHECK_MSG(to == DType::kF32 || to == DType::kBF16 || to == DType::kF16,
               "cast_matrix: target must be f32, bf16 or f16");
  OwnedMatrix out;
  out.dtype = to;
  out.rows = rows;
  out.cols = cols;
  const size_t elem = dtype_size(to);
  out.data.resize(static_cast<size_t>(rows * cols) * elem);
  pool.parallel_for(
      static_cast<size_t>(rows),
      [&](size_t begin, size_t end, int) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
          src(r, row.data());
          uint8_t* dst = out.data.data() + static_cast<size_t>(r * cols) * elem;
          for (int64_t c = 0; c < cols; ++c) {
            if (to == DType::kF32) {
              reinterpret_cast<float*>(dst)[c] = row[c];
            } else if (to == DType::kBF16) {
              reinterpret_cast<uint16_t*>(dst)[c] = f32_to_bf16(row[c]);
            } else {
              reinterpret_cast<uint16_t*>(dst)[c] = f32_to_f16(row[c]);
            }
          }
        }
      },
      16);
  return out;
}

void quantize_row_q8(const float* x, int64_t cols, int8_t* q, float* scales) {
  const int64_t padded = quant_padded_cols(cols);
  for (int64_t b0 = 0; b0 < padded; b0 += kQuantBlock) {
    float amax = 0.0f;
    for (int64_t c = b0; c < std::min(b0 + kQuantBlock, cols); ++c) {
      amax = std::max(amax, std::fabs(x[c]));
    }
    const float s = amax / 127.0f;
    const float inv = s > 0.0f ? 127.0f / amax : 0.0f;
    scales[b0 / kQuantBlock] = s;
    for (int64_t c = b0; c < b0 + kQuantBlock; ++c) {
      q[c] = c < cols ? static_cast<int8_t>(round_even(x[c] * inv)) : 0;
    }
  }
}

}  // namespace r1::kernels
