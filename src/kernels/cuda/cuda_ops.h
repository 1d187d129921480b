// The CUDA kernels of the GPU backend, as host functions that enqueue work on
// a stream (kernels/cuda/*.cu). Plain C++ declarations: a .cpp file that
// includes this needs only the CUDA runtime headers, not nvcc.
//
// Conventions: row-major; activations 16-bit with f32 accumulation (bf16, or
// f16 with `f16` set where the GPU lacks bf16 tensor cores: sm_75), the
// residual stream f32; weight matrices [n_out, n_in] as stored; the paged KV
// cache of a layer is [n_blocks, block_size, n_kv_heads, head_dim] bf16 for K
// and for V. Every function returns the launch's error (cudaGetLastError).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/cuda/host_quant.h"

namespace r1::kernels::cuda {

// x: [n, hidden] f32 = rows ids[i] of table: [vocab, hidden] bf16.
cudaError_t embedding(const bf16_t* table, int64_t hidden, const int32_t* ids, int64_t n, float* x,
                      cudaStream_t stream, bool f16 = false);

// out: [n, dim] bf16 = x / sqrt(mean(x^2) + eps) * weight, per row; x f32.
cudaError_t rmsnorm(const float* x, const float* weight, float eps, int64_t n, int64_t dim,
                    bf16_t* out, cudaStream_t stream, bool f16 = false);

// x += h (h bf16), then out = rmsnorm(x): the residual add fused with the
// next norm.
cudaError_t add_rmsnorm(float* x, const bf16_t* h, const float* weight, float eps, int64_t n,
                        int64_t dim, bf16_t* out, cudaStream_t stream, bool f16 = false);

// x: [n, dim] f32 += h: [n, dim] bf16.
cudaError_t add_residual(float* x, const bf16_t* h, int64_t n, int64_t dim, cudaStream_t stream,
                         bool f16 = false);

// out: [n_rows, dim] = x rows `rows[i]` (f32).
cudaError_t gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t dim,
                        float* out, cudaStream_t stream);

// The fused QKV projection's output qkv: [n, (n_heads + 2 n_kv_heads) * head_dim]
// f32 (q, then k, then v, per token; f32 so that Qwen2's large biases are
// added before any rounding, as the CPU does). Adds `bias` (f32, same width;
// null = none), rotates q and k (rotate-half RoPE, angle positions[t] *
// inv_freq[i] rounded to f32 as the CPU does), writes q: [n, n_heads *
// head_dim] bf16, and k and v to the cache slots slot_mapping[t] = block *
// block_size + offset.
cudaError_t qkv_bias_rope_store(const float* qkv, const float* bias, const float* inv_freq,
                                const int32_t* positions, const int32_t* slot_mapping, int64_t n,
                                int n_heads, int n_kv_heads, int head_dim, bf16_t* q,
                                bf16_t* k_cache, bf16_t* v_cache, cudaStream_t stream,
                                bool f16 = false);

struct AttentionArgs {
  const bf16_t* q = nullptr;  // [n, q_stride] bf16, head h at h * head_dim
  int64_t q_stride = 0;
  const bf16_t* k_cache = nullptr;
  const bf16_t* v_cache = nullptr;
  int block_size = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // a multiple of 32, at most 256
  float scale = 0;
  int64_t n_tokens = 0;
  const int32_t* token_seq = nullptr;     // [n] the sequence of each token
  const int32_t* positions = nullptr;     // [n] attends to 0..positions[t]
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int max_position = 0;   // the largest position in the batch (sizes the splits)
  bf16_t* out = nullptr;  // [n, n_heads * head_dim]
  // Flash-decoding: each token's context split into up to this many equal
  // chunks, each chunk's partial softmax in the workspace, merged by a
  // second pass. paged_attention chooses the split count per step: as many
  // as the context has chunks of kMinSplitKeys keys, capped by this and by
  // what the workspace holds for the step's tokens (a long prefill gets
  // one: its tokens already fill the GPU).
  int max_splits = 32;
  // > 0: exactly this many splits whatever the contexts (a CUDA graph
  // replays one launch shape), still capped by max_splits and the workspace.
  int fixed_splits = 0;
  bool f16 = false;  // q, K/V and out in f16 rather than bf16
  float* workspace = nullptr;
  int64_t workspace_floats = 0;
};
constexpr int kMinSplitKeys = 256;

// Causal attention of each token over its sequence's cached K/V (GQA: query
// head h reads kv head h / (n_heads / n_kv_heads)), one pass for decode and
// prefill alike, the softmax in f32.
cudaError_t paged_attention(const AttentionArgs& args, cudaStream_t stream);

// gate_up: [n, 2 * inter] bf16 (gate then up) -> out: [n, inter] = silu(gate) * up.
cudaError_t silu_mul(const bf16_t* gate_up, int64_t n, int64_t inter, bf16_t* out,
                     cudaStream_t stream, bool f16 = false);

// Weight-only quantised matrices (kernels/cuda/host_quant.h makes them at
// load): int8 or FP8 E4M3 values [rows, cols], one f32 scale per row.

// y: [n, rows] = x: [n, cols] bf16 * dequant(w)^T, for small n (decode):
// one warp per output row reads the row once for all n tokens. n <= 8. y is
// f32 when `f32_out`, else bf16.
cudaError_t quant_gemv(QuantKind kind, const void* w, const float* scales, int64_t rows,
                       int64_t cols, const bf16_t* x, int64_t n, void* y, bool f32_out,
                       cudaStream_t stream, bool f16 = false);
constexpr int64_t kQuantGemvMaxTokens = 8;

// x: [count] bf16 -> q: [count] FP8 E4M3 with one scale for all of it:
// *scale = max|x| / 448 (1 for zeros), computed on the device (amax: one
// scratch float), q = x / *scale saturated. For cuBLASLt's FP8 products.
cudaError_t quantize_fp8_tensor(const bf16_t* x, int64_t count, uint8_t* q, float* scale,
                                float* amax, cudaStream_t stream, bool f16 = false);

// The int8 tensor-core product (Gemm::matmul_int8) of weight-only int8
// rows: the activations quantised per token, q: [n, cols] int8 with
// scales[t] = max|x_t| / 127 by quantize_rows' rule (host_quant.h) ...
cudaError_t quantize_int8_rows(const bf16_t* x, int64_t n, int64_t cols, int8_t* q, float* scales,
                               cudaStream_t stream, bool f16 = false);
// ... and the exact int32 sums scaled back: y: [n, m] = acc[t, r] *
// x_scales[t] * w_scales[r], f32 when `f32_out`, else 16-bit.
cudaError_t scale_int32_product(const int32_t* acc, int64_t n, int64_t m, const float* x_scales,
                                const float* w_scales, void* y, bool f32_out, cudaStream_t stream,
                                bool f16 = false);

// out: [rows, cols] bf16 = dequant(w) (for a bf16 GEMM on larger batches).
cudaError_t dequantize(QuantKind kind, const void* w, const float* scales, int64_t rows,
                       int64_t cols, bf16_t* out, cudaStream_t stream, bool f16 = false);

// The device sampler: kernels/sampling.h's chain, one block per logit row.
// A row's parameters as plain data (the backend fills them from RowRequest).
constexpr int kDeviceMaxTop = 20;  // more top entries are taken on the host
struct DeviceRow {
  int32_t sample = 0;         // run the chain
  int32_t greedy = 0;         // temperature < 1e-5
  int32_t logprob = 0;        // report the chosen token's raw logprob
  int32_t n_top = 0;          // top entries to report (<= kDeviceMaxTop)
  int32_t score_target = -1;  // also report this id's raw logprob
  int32_t top_k = 0;
  float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f;
  float repetition_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  uint64_t draw = 0;
  int64_t ids_offset = 0;  // the row's prompt then generated ids in the flat id array
  int32_t n_prompt = 0, n_generated = 0;
  // min_tokens: ids masked (-inf) for this step, in the flat id array.
  int64_t masked_offset = 0;
  int32_t n_masked = 0;
};

struct DeviceRowResult {
  int32_t error = 0;  // 1: no finite logit
  int32_t id = -1;
  float logprob = 0.0f;
  float target_logprob = 0.0f;
  int32_t n_top = 0;
  int32_t top_ids[kDeviceMaxTop];
  float top_logprobs[kDeviceMaxTop];
};

// logits: [n_rows, stride] f32, ids >= n_valid masked; weights: [n_rows,
// stride] f32 scratch; flags: [n_rows, stride] u32 scratch, all zero on
// entry and left zero. out: [n_rows].
cudaError_t sample_rows(const float* logits, int64_t n_rows, int64_t stride, int32_t n_valid,
                        const DeviceRow* rows, const int32_t* ids, float* weights, uint32_t* flags,
                        DeviceRowResult* out, cudaStream_t stream);

}  // namespace r1::kernels::cuda
