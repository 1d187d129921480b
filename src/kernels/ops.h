// The operations a forward pass needs, as free functions over raw buffers.
// Every backend implements the same list (kernels/reference_ops.h is the
// specification, kernels/cpu_ops.h the threaded SIMD version) and is tested
// against the reference on seeded random inputs.
//
// Conventions: row-major; weight matrices are [n_out, n_in] as Hugging Face
// stores them (y = x W^T); activations are f32; weights may be f32, bf16 or
// f16 and are converted on the fly (never copied at load).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace r1::kernels {

// Quantised layouts work in blocks of 32 columns; a quantised row is padded
// with zeros to a whole number of blocks.
inline constexpr int64_t kQuantBlock = 32;
inline int64_t quant_padded_cols(int64_t cols) {
  return (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock;
}

// A weight matrix in its stored dtype.
//   f32 / bf16 / f16: data [rows, cols].
//   kQ8: data int8 [rows, padded_cols], values in [-127, 127];
//        scales f32 [rows, padded_cols / group_size]; w = q * scale.
//   kQ4: data [rows, padded_cols / 2] bytes, values stored as q + 8 (q in
//        [-8, 7]), 16 bytes per block of 32 values. Blocks go in pairs: the
//        32 bytes of blocks 2p and 2p + 1 hold, in byte j, value j of block
//        2p in the low nibble and value j of block 2p + 1 in the high one
//        (one 32-byte load, a mask and a shift give both blocks). A last
//        unpaired block holds value j in the low nibble of byte j and value
//        j + 16 in the high one. See q4_slot().
//        scales f16 [rows, padded_cols / 32]; w = q * scale.
// (padded_cols = quant_padded_cols(cols).)
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;              // n_out
  int64_t cols = 0;              // n_in
  const void* scales = nullptr;  // quantised layouts only
  int64_t group_size = 0;        // columns per scale (kQ8: a multiple of 32; kQ4: 32)
};

// Where value j (0..31) of block b of a kQ4 row of n_blocks blocks lives,
// as laid out above: its byte and whether it is the high nibble.
struct Q4Slot {
  int64_t byte;
  bool high;
};
inline Q4Slot q4_slot(int64_t n_blocks, int64_t b, int j) {
  if ((b & 1) == 0 && b + 1 == n_blocks) return {b * 16 + (j & 15), j >= 16};  // unpaired last
  return {(b & ~int64_t{1}) * 16 + j, (b & 1) == 1};
}

// The stored nibble (q + 8, in 0..15) of value j of block b.
inline int q4_stored(const uint8_t* row, int64_t n_blocks, int64_t b, int j) {
  const Q4Slot s = q4_slot(n_blocks, b, j);
  return s.high ? row[s.byte] >> 4 : row[s.byte] & 0x0F;
}

// Bytes of one stored row (scales excluded).
int64_t matrix_row_bytes(const MatrixView& m);
// Bytes a full pass over the matrix reads, scales included.
int64_t matrix_bytes(const MatrixView& m);

// Element (r, c) of a weight matrix as f32.
float matrix_at(const MatrixView& m, int64_t r, int64_t c);

// The geometry of a paged KV cache for one layer:
// k, v: [n_blocks, block_size, n_kv_heads, head_dim] f32.
struct KvLayerView {
  float* k = nullptr;
  float* v = nullptr;
  int32_t n_blocks = 0;
  int32_t block_size = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
};

// Which tokens of a batch belong to which sequence, and where each sequence's
// KV lives. Tokens of sequence s are [query_start[s], query_start[s+1]).
struct AttentionBatch {
  int32_t n_seqs = 0;
  const int32_t* query_start = nullptr;   // [n_seqs + 1]
  const int32_t* positions = nullptr;     // [n_tokens] absolute position of each token
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq], -1 past the end
  int32_t max_blocks_per_seq = 0;
};

}  // namespace r1::kernels
