// The reference backend: scalar, single-threaded, accumulating in double.
// It is the specification the other backends are tested against, so it is
// written for obviousness, never for speed.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace r1::kernels::reference {

// out: [n, w.cols] = rows ids[i] of the table w (embedding gather).
void embedding(const MatrixView& w, const int32_t* ids, int64_t n, float* out);

// y: [n_tokens, w.rows] = x: [n_tokens, w.cols] * w^T (+ bias: [w.rows] when non-null).
void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y);

// The activation quantisation the integer kernels apply (kernels/quant.h),
// written out again here as the specification: blocks of 32, scale max|x| /
// 127, q = round-half-even(x * 127 / max|x|). q: [padded] (zero padded),
// scales: [padded / 32].
void quantize_activations(const float* x, int64_t cols, int8_t* q, float* scales);

// matmul for int8 / int4 weights as the CPU computes it: x quantised by
// quantize_activations, products of the dequantised weights and the integer
// activations summed in double per block, times the block's scale.
void matmul_quantized(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens,
                      float* y);

// y = x / sqrt(mean(x^2) + eps) * weight, per row. x, y: [n_rows, dim]; may alias.
void rmsnorm(const float* x, const float* weight, float eps, int64_t n_rows, int64_t dim, float* y);

// Rotate-half RoPE in place. x: [n_tokens, n_heads, head_dim]; dimension i
// pairs with i + head_dim/2 and turns by positions[t] * inv_freq[i] (that
// product rounded to f32, as Hugging Face computes it).
// inv_freq: [head_dim / 2].
void rope(float* x, const int32_t* positions, const float* inv_freq, int64_t n_tokens,
          int64_t n_heads, int64_t head_dim);

// out[t, i] = silu(gate[t, i]) * up[t, i]; gate, up, out: [n_tokens, n] (row strides given).
void silu_mul(const float* gate, const float* up, int64_t n_tokens, int64_t n, int64_t in_stride,
              int64_t out_stride, float* out);

// Writes k, v: [n_tokens, n_kv_heads, head_dim] into the cache slots
// slot_mapping[t] = block * block_size + offset.
void kv_store(const KvLayerView& kv, const float* k, const float* v, const int32_t* slot_mapping,
              int64_t n_tokens);

// Causal attention over the paged cache: token t of sequence s attends to the
// KV of positions 0..positions[t] of s (which must already be stored).
// q, out: [n_tokens, n_heads, head_dim]; query head h reads kv head
// h / (n_heads / n_kv_heads).
void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out);

}  // namespace r1::kernels::reference
