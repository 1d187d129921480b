// The CPU backend's kernels: the same contracts as reference_ops.h, threaded
// over a ThreadPool with statically partitioned work and SIMD inner loops
// (compiled for AVX-512, AVX2+FMA and baseline x86-64, picked at run time).
// No allocation in the hot loops: per-thread scratch grows once and is reused.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

void embedding(const MatrixView& w, const int32_t* ids, int64_t n, float* out, ThreadPool& pool);

// y: [n_tokens, w.rows] = x: [n_tokens, w.cols] * w^T (+ bias). Each weight
// row is read once per call whatever n_tokens is.
void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y,
            ThreadPool& pool);

// One product of a matmul_multi: y: [n_tokens, w.rows] (+ bias [w.rows] when set).
struct MatmulOutput {
  MatrixView w;
  const float* bias = nullptr;
  float* y = nullptr;
};
// Several products of the same x (q/k/v) in one pass: the rows of all of them
// are split over the threads together (one barrier, balanced work), and a
// quantised x is made once.
void matmul_multi(const float* x, int64_t n_tokens, std::span<const MatmulOutput> outs,
                  ThreadPool& pool);

// out: [n_tokens, gate.rows] = silu(x gate^T) * (x up^T), the MLP's first half
// in one pass: row o of gate and row o of up are taken by the same thread and
// combined at once, so the intermediate products never go to memory twice.
void matmul_silu_mul(const float* x, const MatrixView& gate, const MatrixView& up, int64_t n_tokens,
                     float* out, ThreadPool& pool);

void rmsnorm(const float* x, const float* weight, float eps, int64_t n_rows, int64_t dim, float* y,
             ThreadPool& pool);

void rope(float* x, const int32_t* positions, const float* inv_freq, int64_t n_tokens,
          int64_t n_heads, int64_t head_dim, ThreadPool& pool);

void silu_mul(const float* gate, const float* up, int64_t n_tokens, int64_t n, int64_t in_stride,
              int64_t out_stride, float* out, ThreadPool& pool);

// The CPU cache's own layout: V as KvLayerView says, K transposed within a
// block, [n_blocks, n_kv_heads, head_dim, block_size] (a head's scores over
// a block are then vectors of FMAs). Only kv_store writes it and only
// paged_attention reads it. A bf16 cache stores each value rounded to
// nearest (ties to even).
void kv_store(const KvLayerView& kv, const float* k, const float* v, const int32_t* slot_mapping,
              int64_t n_tokens);
void kv_store(const KvLayerViewBf16& kv, const float* k, const float* v,
              const int32_t* slot_mapping, int64_t n_tokens);

// Online-softmax attention over the paged cache; each K/V row is read once for
// all the query heads of its GQA group. A bf16 cache is widened to f32 as it
// is read: the result is the f32 cache's with the stored values.
void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool);
void paged_attention(const float* q, const KvLayerViewBf16& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool);

// Low-level dot products of one weight row with one activation row (f32 accumulation).
float dot_f32(const float* w, const float* x, int64_t n);
float dot_bf16(const uint16_t* w, const float* x, int64_t n);
float dot_f16(const uint16_t* w, const float* x, int64_t n);

// bf16 weight rows (n_rows 1..4, `row_stride` elements apart, n columns)
// against n_x (1..3) f32 activation rows: out[r * n_x + t]. Every tile
// shape gives bit-identical results for the same (row, token) on one ISA
// path.
void dot_bf16_tile(const uint16_t* w, int64_t row_stride, int n_rows, const float* const* x,
                   int n_x, int64_t n, float* out);
// Any number of bf16 rows against one activation row: out[r], the bits
// dot_bf16_tile gives for each. Read as a few long sequential streams, so a
// caller passes its whole range at once.
void dot_bf16_rows(const uint16_t* w, int64_t row_stride, int n_rows, const float* x, int64_t n,
                   float* out);

// Quantised weight rows against activation rows quantised by
// quantize_row_q8 (xq: [padded] int8, xs: [padded / 32] f32; padded: the row
// length, a multiple of 32). Every shape gives bit-identical results for the
// same (row, token) on one ISA path.
// int8: w [padded] per row, w_scales f32 [padded / group] per row.
// One row against n_x (1..4) tokens: out[t].
void dot_q8(const int8_t* w, const float* w_scales, int64_t group, const int8_t* const* xq,
            const float* const* xs, int n_x, int64_t padded, float* out);
// n_rows rows (any number), `row_stride` bytes / `ws_stride` scales apart,
// against one token: out[r]. Each call reads its rows as a few long
// sequential streams, so a caller passes its whole range at once.
void dot_q8_rows(const int8_t* w, int64_t row_stride, const float* w_scales, int64_t ws_stride,
                 int n_rows, int64_t group, const int8_t* xq, const float* xs, int64_t padded,
                 float* out);
// Two rows (scales ws0, ws1: [padded / group] each) against four tokens:
// out[r * 4 + t].
void dot_q8_2x4(const int8_t* w0, const int8_t* w1, const float* ws0, const float* ws1,
                int64_t group, const int8_t* const* xq, const float* const* xs, int64_t padded,
                float* out);
// int4: w [padded / 2] per row packed as in ops.h, w_scales f16 [padded / 32];
// xi and xo: the activations as q4_prepare_activations arranges them.
void dot_q4(const uint8_t* w, const uint16_t* w_scales, const int8_t* const* xi,
            const float* const* xs, const int32_t* const* xo, int n_x, int64_t padded, float* out);
// n_rows rows (any number) against one token: out[r]; read like
// dot_q8_rows.
void dot_q4_rows(const uint8_t* w, int64_t row_stride, const uint16_t* w_scales, int64_t ws_stride,
                 int n_rows, const int8_t* xi, const float* xs, const int32_t* xo, int64_t padded,
                 float* out);
// Two rows against four tokens: out[r * 4 + t].
void dot_q4_2x4(const uint8_t* w0, const uint8_t* w1, const uint16_t* ws0, const uint16_t* ws1,
                const int8_t* const* xi, const float* const* xs, const int32_t* const* xo,
                int64_t padded, float* out);
// One quantised activation row (xq [padded], blocks of 32) for the int4
// kernels: xi [padded] holds its values in the order of ops.h's
// q4_x_index, and xo[b] = 8 * (sum of block b), what a block sum taken over
// the stored nibbles (q + 8) has in excess.
void q4_prepare_activations(const int8_t* xq, int64_t padded, int8_t* xi, int32_t* xo);

}  // namespace r1::kernels::cpu
