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

// A weight matrix in its stored dtype. data: [rows, cols] of `dtype`.
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;  // n_out
  int64_t cols = 0;  // n_in
};

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
