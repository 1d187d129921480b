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
//        [-8, 7]), 16 bytes per block of 32 values. Blocks go in groups of
//        16 (the last group of a row may be shorter: t blocks), 16 t bytes
//        each, interleaved so that a 64-byte load holds four bytes of each
//        of 16 blocks: part p (0..3) of a group is 4 t bytes, and its bytes
//        4 i .. 4 i + 3 belong to block i of the group; byte m of them holds
//        value 8 p + m in the low nibble and value 8 p + 4 + m in the high
//        one. One vpdpbusd per nibble half then sums 4 products of each of
//        16 blocks into one i32 lane per block, so a block's sum never needs
//        reducing across lanes. See q4_slot() and q4_x_index().
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
inline constexpr int64_t kQ4Group = 16;  // blocks per interleaved group
inline int64_t q4_group_blocks(int64_t n_blocks, int64_t g0) {
  return n_blocks - g0 < kQ4Group ? n_blocks - g0 : kQ4Group;
}
inline Q4Slot q4_slot(int64_t n_blocks, int64_t b, int j) {
  const int64_t g0 = b / kQ4Group * kQ4Group;
  const int64_t t = q4_group_blocks(n_blocks, g0);
  return {g0 * 16 + (j / 8) * 4 * t + (b - g0) * 4 + (j & 3), (j & 4) != 0};
}

// The int4 kernels take activations arranged to match: for group g0 of t
// blocks, 32 t bytes from 32 g0; part p is 8 t bytes, its first 4 t the
// values the low nibbles meet (lane i: values 8 p .. 8 p + 3 of block i),
// the next 4 t those the high nibbles meet (8 p + 4 .. 8 p + 7). This is
// where value j of activation block b goes.
inline int64_t q4_x_index(int64_t n_blocks, int64_t b, int j) {
  const int64_t g0 = b / kQ4Group * kQ4Group;
  const int64_t t = q4_group_blocks(n_blocks, g0);
  return g0 * 32 + (j / 8) * 8 * t + ((j & 4) != 0 ? 4 * t : 0) + (b - g0) * 4 + (j & 3);
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
// k, v: [n_blocks, block_size, n_kv_heads, head_dim] of T: f32, or bf16
// (uint16_t, the top half of an f32) for half the bytes. That is the
// reference kernels' layout; the CPU kernels store K transposed within a
// block (cpu_ops.h), and only their kv_store writes what their attention
// reads.
template <typename T>
struct KvLayerViewOf {
  T* k = nullptr;
  T* v = nullptr;
  int32_t n_blocks = 0;
  int32_t block_size = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
};
using KvLayerView = KvLayerViewOf<float>;
using KvLayerViewBf16 = KvLayerViewOf<uint16_t>;

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
