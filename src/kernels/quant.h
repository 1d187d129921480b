// Weight quantisation at load (symmetric, no zero point) and the activation
// quantisation the integer kernels use.
//
// int8 weights: q = round(w / s), s = max|w| / 127 over a group of columns
// (the whole row by default: one f32 scale per output channel; see
// docs/PERFORMANCE.md for the measurement behind that default).
// int4 weights: groups of 32 columns, s = m / -8 where m is the group's value
// of largest magnitude (so that value maps to -8 exactly and the 16 levels
// -8..7 are all used), q = clamp(round(w / s), -8, 7), s stored as f16.
// Activations (for either): blocks of 32 values, s = max|x| / 127, q =
// round-half-even(x / s), s kept in f32.
#pragma once

#include <cstdint>
#include <functional>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace r1::kernels {

// Owns the bytes of a matrix made at load (quantised, or cast to another
// float dtype).
struct OwnedMatrix {
  DType dtype = DType::kQ8;
  int64_t rows = 0, cols = 0, group_size = 0;
  AlignedBuffer<uint8_t> data;
  AlignedBuffer<uint8_t> scales;

  MatrixView view() const {
    return MatrixView{data.data(), dtype, rows, cols, scales.data(), group_size};
  }
};

// Quantises `src` (f32, bf16 or f16) to `to` (kQ8 or kQ4). kQ8 group_size: a
// multiple of 32, or 0 for one scale per row; kQ4 always uses 32. Rows are
// split over the pool. Throws std::bad_alloc when memory runs out.
OwnedMatrix quantize_matrix(const MatrixView& src, DType to, int64_t group_size, ThreadPool& pool);

// Row r (0 <= r < rows) of a matrix written as `cols` f32 values: for sources
// the kernels cannot view in place (GGUF block formats, reordered rows).
using RowSource = std::function<void(int64_t r, float* out)>;

// quantize_matrix / cast_matrix over rows a RowSource produces. Called from
// several pool threads at once: the source must be safe for that.
OwnedMatrix quantize_rows(int64_t rows, int64_t cols, const RowSource& src, DType to,
                          int64_t group_size, ThreadPool& pool);
OwnedMatrix cast_rows(int64_t rows, int64_t cols, const RowSource& src, DType to, ThreadPool& pool);

// Converts `src` to another float dtype (f32, bf16, f16; rounding to
// nearest even).
OwnedMatrix cast_matrix(const MatrixView& src, DType to, ThreadPool& pool);

// One activation row quantised in blocks of 32: q [padded_cols] int8 (zero
// padded), scales [padded_cols / 32] f32.
void quantize_row_q8(const float* x, int64_t cols, int8_t* q, float* scales);

}  // namespace r1::kernels
