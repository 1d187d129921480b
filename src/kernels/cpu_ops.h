// The CPU backend's kernels: the same contracts as reference_ops.h, threaded
// over a ThreadPool with statically partitioned work and SIMD inner loops
// (compiled for AVX-512, AVX2+FMA and baseline x86-64, picked at run time).
// No allocation in the hot loops: per-thread scratch grows once and is reused.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace r1::kernels::cpu {

void embedding(const MatrixView& w, const int32_t* ids, int64_t n, float* out, ThreadPool& pool);

// y: [n_tokens, w.rows] = x: [n_tokens, w.cols] * w^T (+ bias). Each weight
// row is read once per call whatever n_tokens is.
void matmul(const float* x, const MatrixView& w, const float* bias, int64_t n_tokens, float* y,
            ThreadPool& pool);

void rmsnorm(const float* x, const float* weight, float eps, int64_t n_rows, int64_t dim, float* y,
             ThreadPool& pool);

void rope(float* x, const int32_t* positions, const float* inv_freq, int64_t n_tokens,
          int64_t n_heads, int64_t head_dim, ThreadPool& pool);

void silu_mul(const float* gate, const float* up, int64_t n_tokens, int64_t n, int64_t in_stride,
              int64_t out_stride, float* out, ThreadPool& pool);

void kv_store(const KvLayerView& kv, const float* k, const float* v, const int32_t* slot_mapping,
              int64_t n_tokens);

// Online-softmax attention over the paged cache; each K/V row is read once for
// all the query heads of its GQA group.
void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool);

// Low-level dot products of one weight row with one activation row (f32 accumulation).
float dot_f32(const float* w, const float* x, int64_t n);
float dot_bf16(const uint16_t* w, const float* x, int64_t n);
float dot_f16(const uint16_t* w, const float* x, int64_t n);

}  // namespace r1::kernels::cpu
