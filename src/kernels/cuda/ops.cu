// The element-wise, normalisation, RoPE/KV-store, attention and
// weight-only-quantised kernels of the CUDA backend (declared in cuda_ops.h).
// Written for clarity first: each is a single pass over its data, with
// 16-byte loads where rows allow; measured on a GPU before any is tuned.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/cuda/cuda_ops.h"

namespace r1::kernels::cuda {
namespace {

// The 16-bit activation format: bf16, or f16 where the GPU has no bf16
// tensor cores (sm_75). Kernels take it as a template flag.
template <bool F16>
__device__ __forceinline__ float ld(uint16_t b) {
  if constexpr (F16) {
    __half h;
    memcpy(&h, &b, sizeof b);
    return __half2float(h);
  } else {
    return __uint_as_float(static_cast<uint32_t>(b) << 16);
  }
}
template <bool F16>
__device__ __forceinline__ uint16_t st(float f) {
  uint16_t bits;
  if constexpr (F16) {
    const __half h = __float2half_rn(f);
    memcpy(&bits, &h, sizeof bits);
  } else {
    const __nv_bfloat16 h = __float2bfloat16_rn(f);
    memcpy(&bits, &h, sizeof bits);
  }
  return bits;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of up to 1024 threads; every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read from a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + 31) >> 5;
  v = lane < n_warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

// Max over a block of up to 1024 threads (non-negative values).
__device__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + 31) >> 5;
  v = lane < n_warps ? partial[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

constexpr int kThreads = 256;

int64_t blocks_for(int64_t n, int threads = kThreads) {
  return (n + threads - 1) / threads;
}

template <bool F16>
__global__ void embedding_kernel(const bf16_t* table, int64_t hidden, const int32_t* ids,
                                 float* x) {
  const int64_t t = blockIdx.x;
  const bf16_t* row = table + static_cast<int64_t>(ids[t]) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) x[t * hidden + i] = ld<F16>(row[i]);
}

// One block per row; `add` adds h into x first.
template <bool kAdd, bool F16>
__global__ void rmsnorm_kernel(float* x, const bf16_t* h, const float* weight, float eps,
                               int64_t dim, bf16_t* out) {
  const int64_t r = blockIdx.x;
  float* xr = x + r * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if constexpr (kAdd) {
      v += ld<F16>(h[r * dim + i]);
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    out[r * dim + i] = st<F16>(xr[i] * inv * weight[i]);
  }
}

template <bool F16>
__global__ void add_kernel(float* x, const bf16_t* h, int64_t count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) x[i] += ld<F16>(h[i]);
}

__global__ void gather_kernel(const float* x, const int32_t* rows, int64_t dim, float* out) {
  const int64_t r = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[r]) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) out[r * dim + i] = src[i];
}

// One block per token; thread i of a head handles the pair (i, i + half).
template <bool F16>
__global__ void qkv_rope_store_kernel(const float* qkv, const float* bias, const float* inv_freq,
                                      const int32_t* positions, const int32_t* slots, int n_heads,
                                      int n_kv_heads, int head_dim, bf16_t* q_out, bf16_t* k_cache,
                                      bf16_t* v_cache) {
  const int64_t t = blockIdx.x;
  const int width = (n_heads + 2 * n_kv_heads) * head_dim;
  const float* row = qkv + t * width;
  const int half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  const int64_t slot = slots[t];
  // q and k heads: rotate pairs.
  for (int p = threadIdx.x; p < (n_heads + n_kv_heads) * half; p += blockDim.x) {
    const int head = p / half, i = p % half;
    const int a = head * head_dim + i, b = a + half;
    float x0 = row[a], x1 = row[b];
    if (bias != nullptr) {
      x0 += bias[a];
      x1 += bias[b];
    }
    // The angle rounded to f32 before sin/cos, as Hugging Face computes it.
    const float angle = pos * inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    const float y0 = x0 * c - x1 * s, y1 = x1 * c + x0 * s;
    if (head < n_heads) {
      q_out[t * n_heads * head_dim + a] = st<F16>(y0);
      q_out[t * n_heads * head_dim + b] = st<F16>(y1);
    } else {
      const int64_t base = (slot * n_kv_heads + (head - n_heads)) * head_dim;
      k_cache[base + i] = st<F16>(y0);
      k_cache[base + i + half] = st<F16>(y1);
    }
  }
  // v heads: bias, then into the cache.
  const int v0 = (n_heads + n_kv_heads) * head_dim;
  for (int j = threadIdx.x; j < n_kv_heads * head_dim; j += blockDim.x) {
    float v = row[v0 + j];
    if (bias != nullptr) v += bias[v0 + j];
    v_cache[slot * n_kv_heads * head_dim + j] = st<F16>(v);
  }
}

// Attention. Grid (token, head, split); a block of kAttnWarps warps. Lane l
// of a warp holds dims l, l + 32, ... of the query; the warps take the
// split's keys in turn, each keeping an online softmax, merged in shared
// memory. With one split the result goes straight out; otherwise the split's
// (max, sum, acc) go to the workspace for merge_kernel.
constexpr int kAttnWarps = 4;
constexpr int kMaxDimsPerLane = 8;  // head_dim <= 256

template <bool F16>
__global__ void attention_kernel(AttentionArgs a, int n_splits) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int per_lane = a.head_dim / 32;
  const int kvh = h / (a.n_heads / a.n_kv_heads);
  const int last = a.positions[t];
  // The token's own context in n_splits chunks (the last ones may be empty).
  const int split_keys = (last + n_splits) / n_splits;  // ceil((last + 1) / n_splits)
  const int begin = split * split_keys;
  const int end = min(last + 1, begin + split_keys);
  const int32_t* table =
      a.block_tables + static_cast<int64_t>(a.token_seq[t]) * a.max_blocks_per_seq;

  float q[kMaxDimsPerLane], acc[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    q[i] = i < per_lane ? ld<F16>(a.q[t * a.q_stride + h * a.head_dim + i * 32 + lane]) * a.scale
                        : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = begin + warp; j < end; j += kAttnWarps) {
    const int64_t slot =
        static_cast<int64_t>(table[j / a.block_size]) * a.block_size + j % a.block_size;
    const int64_t base = (slot * a.n_kv_heads + kvh) * a.head_dim;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      if (i < per_lane) s += q[i] * ld<F16>(a.k_cache[base + i * 32 + lane]);
    }
    s = warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float corr = __expf(m - m_new);
    const float p = __expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      if (i < per_lane) acc[i] = acc[i] * corr + p * ld<F16>(a.v_cache[base + i * 32 + lane]);
    }
    m = m_new;
  }

  // Merge the warps.
  __shared__ float s_m[kAttnWarps], s_l[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kMaxDimsPerLane * 32];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    if (i < per_lane) s_acc[warp][i * 32 + lane] = acc[i];
  }
  __syncthreads();
  if (warp != 0) return;
  float gm = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) gm = fmaxf(gm, s_m[w]);
  float gl = 0.0f;
  float out[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) out[i] = 0.0f;
  for (int w = 0; w < kAttnWarps; ++w) {
    if (s_m[w] == -INFINITY) continue;
    const float c = __expf(s_m[w] - gm);
    gl += s_l[w] * c;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      if (i < per_lane) out[i] += s_acc[w][i * 32 + lane] * c;
    }
  }
  if (n_splits == 1) {
    bf16_t* o = a.out + t * static_cast<int64_t>(a.n_heads) * a.head_dim + h * a.head_dim;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      if (i < per_lane) o[i * 32 + lane] = st<F16>(gl > 0.0f ? out[i] / gl : 0.0f);
    }
    return;
  }
  // Workspace per (token, head, split): max, sum, then head_dim accumulators.
  const int64_t rec = 2 + a.head_dim;
  float* ws = a.workspace + ((t * a.n_heads + h) * n_splits + split) * rec;
  if (lane == 0) {
    ws[0] = gm;
    ws[1] = gl;
  }
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    if (i < per_lane) ws[2 + i * 32 + lane] = out[i];
  }
}

// One warp per (token, head): merges the splits of that token's context.
template <bool F16>
__global__ void attention_merge_kernel(AttentionArgs a, int n_splits) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int lane = threadIdx.x;
  const int per_lane = a.head_dim / 32;
  const int used = n_splits;  // empty splits have max -inf and are skipped
  const int64_t rec = 2 + a.head_dim;
  const float* ws = a.workspace + (t * a.n_heads + h) * n_splits * rec;
  float gm = -INFINITY;
  for (int s = 0; s < used; ++s) gm = fmaxf(gm, ws[s * rec]);
  float gl = 0.0f;
  float out[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) out[i] = 0.0f;
  for (int s = 0; s < used; ++s) {
    const float m = ws[s * rec];
    if (m == -INFINITY) continue;
    const float c = __expf(m - gm);
    gl += ws[s * rec + 1] * c;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      if (i < per_lane) out[i] += ws[s * rec + 2 + i * 32 + lane] * c;
    }
  }
  bf16_t* o = a.out + t * static_cast<int64_t>(a.n_heads) * a.head_dim + h * a.head_dim;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    if (i < per_lane) o[i * 32 + lane] = st<F16>(gl > 0.0f ? out[i] / gl : 0.0f);
  }
}

template <bool F16>
__global__ void silu_mul_kernel(const bf16_t* gate_up, int64_t n, int64_t inter, bf16_t* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * inter) return;
  const int64_t t = i / inter, c = i % inter;
  const float g = ld<F16>(gate_up[t * 2 * inter + c]);
  const float u = ld<F16>(gate_up[t * 2 * inter + inter + c]);
  out[i] = st<F16>(g / (1.0f + __expf(-g)) * u);
}

template <QuantKind kKind>
__device__ __forceinline__ float dequant(uint8_t v) {
  if constexpr (kKind == QuantKind::kInt8) {
    return static_cast<float>(static_cast<int8_t>(v));
  } else {
    __nv_fp8_e4m3 f;
    memcpy(&f, &v, 1);
    return static_cast<float>(f);
  }
}

// One warp per output row; each lane reads 16 weight bytes at a time and
// the matching activations of every token.
template <bool F16>
__device__ __forceinline__ void store(float* p, float v) {
  *p = v;
}
template <bool F16>
__device__ __forceinline__ void store(bf16_t* p, float v) {
  *p = st<F16>(v);
}

template <QuantKind kKind, int kTokens, typename OutT, bool F16>
__global__ void quant_gemv_kernel(const uint8_t* w, const float* scales, int64_t rows, int64_t cols,
                                  const bf16_t* x, OutT* y) {
  const int64_t r = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const uint8_t* row = w + r * cols;
  float sum[kTokens];
#pragma unroll
  for (int k = 0; k < kTokens; ++k) sum[k] = 0.0f;
  const bool vec = (cols % 16) == 0;
  if (vec) {
    for (int64_t c = lane * 16; c < cols; c += 32 * 16) {
      const uint4 packed = *reinterpret_cast<const uint4*>(row + c);
      uint8_t bytes[16];
      memcpy(bytes, &packed, 16);
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const float wv = dequant<kKind>(bytes[e]);
#pragma unroll
        for (int k = 0; k < kTokens; ++k) sum[k] += wv * ld<F16>(x[k * cols + c + e]);
      }
    }
  } else {
    for (int64_t c = lane; c < cols; c += 32) {
      const float wv = dequant<kKind>(row[c]);
#pragma unroll
      for (int k = 0; k < kTokens; ++k) sum[k] += wv * ld<F16>(x[k * cols + c]);
    }
  }
  const float s = scales[r];
#pragma unroll
  for (int k = 0; k < kTokens; ++k) {
    const float v = warp_sum(sum[k]);
    if (lane == 0) store<F16>(&y[k * rows + r], v * s);
  }
}

template <QuantKind kKind, bool F16>
__global__ void dequantize_kernel(const uint8_t* w, const float* scales, int64_t rows, int64_t cols,
                                  bf16_t* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * cols) return;
  out[i] = st<F16>(dequant<kKind>(w[i]) * scales[i / cols]);
}

// |x| of non-negative floats orders like their bits: an atomicMax on the
// bits is a float max.
template <bool F16>
__global__ void amax_kernel(const bf16_t* x, int64_t count, float* amax) {
  float m = 0.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    m = fmaxf(m, fabsf(ld<F16>(x[i])));
  }
  m = block_max(m);
  if (threadIdx.x == 0) atomicMax(reinterpret_cast<unsigned int*>(amax), __float_as_uint(m));
}

template <bool F16>
__global__ void quantize_fp8_kernel(const bf16_t* x, int64_t count, uint8_t* q, float* scale,
                                    const float* amax) {
  const float s = *amax > 0.0f ? *amax / 448.0f : 1.0f;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i == 0) *scale = s;
  if (i >= count) return;
  const __nv_fp8_e4m3 v(ld<F16>(x[i]) / s);  // rounds to nearest, saturates to finite
  memcpy(&q[i], &v, 1);
}

// One block per row of x: scale = max|x| / 127 (1 for a row of zeros), q =
// x / scale clamped and rounded to nearest even: quantize_rows' rule.
template <bool F16>
__global__ void quantize_int8_rows_kernel(const bf16_t* x, int64_t cols, int8_t* q, float* scales) {
  const bf16_t* row = x + blockIdx.x * cols;
  float m = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, fabsf(ld<F16>(row[c])));
  m = block_max(m);
  const float scale = m > 0.0f ? m / 127.0f : 1.0f;
  if (threadIdx.x == 0) scales[blockIdx.x] = scale;
  int8_t* out = q + blockIdx.x * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = fminf(127.0f, fmaxf(-127.0f, ld<F16>(row[c]) / scale));
    out[c] = static_cast<int8_t>(__float2int_rn(v));
  }
}

template <typename OutT, bool F16>
__global__ void scale_int32_kernel(const int32_t* acc, int64_t n, int64_t m, const float* x_scales,
                                   const float* w_scales, OutT* y) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n * m) return;
  const int64_t t = i / m, r = i - t * m;
  store<F16>(&y[i], static_cast<float>(acc[i]) * (x_scales[t] * w_scales[r]));
}

// Runs the statements with F16 a compile-time constant equal to `f16`.
#define R1_WITH_F16(f16, ...)     \
  do {                            \
    if (f16) {                    \
      constexpr bool F16 = true;  \
      __VA_ARGS__;                \
    } else {                      \
      constexpr bool F16 = false; \
      __VA_ARGS__;                \
    }                             \
  } while (0)

template <QuantKind kKind, typename OutT, bool F16>
cudaError_t launch_gemv(const uint8_t* w, const float* scales, int64_t rows, int64_t cols,
                        const bf16_t* x, int64_t n, OutT* y, cudaStream_t stream) {
  constexpr int kWarps = 8;
  const dim3 grid(static_cast<unsigned>((rows + kWarps - 1) / kWarps));
  switch (n) {
#define R1_GEMV_CASE(N)                                                  \
  case N:                                                                \
    quant_gemv_kernel<kKind, N, OutT, F16>                               \
        <<<grid, kWarps * 32, 0, stream>>>(w, scales, rows, cols, x, y); \
    break;
    R1_GEMV_CASE(1)
    R1_GEMV_CASE(2)
    R1_GEMV_CASE(3)
    R1_GEMV_CASE(4)
    R1_GEMV_CASE(5)
    R1_GEMV_CASE(6)
    R1_GEMV_CASE(7)
    R1_GEMV_CASE(8)
#undef R1_GEMV_CASE
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t embedding(const bf16_t* table, int64_t hidden, const int32_t* ids, int64_t n, float* x,
                      cudaStream_t stream, bool f16) {
  if (n == 0) return cudaSuccess;
  R1_WITH_F16(f16, embedding_kernel<F16>
              <<<static_cast<unsigned>(n), kThreads, 0, stream>>>(table, hidden, ids, x));
  return cudaGetLastError();
}

cudaError_t rmsnorm(const float* x, const float* weight, float eps, int64_t n, int64_t dim,
                    bf16_t* out, cudaStream_t stream, bool f16) {
  if (n == 0) return cudaSuccess;
  R1_WITH_F16(f16, rmsnorm_kernel<false, F16><<<static_cast<unsigned>(n), 1024, 0, stream>>>(
                       const_cast<float*>(x), nullptr, weight, eps, dim, out));
  return cudaGetLastError();
}

cudaError_t add_rmsnorm(float* x, const bf16_t* h, const float* weight, float eps, int64_t n,
                        int64_t dim, bf16_t* out, cudaStream_t stream, bool f16) {
  if (n == 0) return cudaSuccess;
  R1_WITH_F16(f16, rmsnorm_kernel<true, F16>
              <<<static_cast<unsigned>(n), 1024, 0, stream>>>(x, h, weight, eps, dim, out));
  return cudaGetLastError();
}

cudaError_t add_residual(float* x, const bf16_t* h, int64_t n, int64_t dim, cudaStream_t stream,
                         bool f16) {
  const int64_t count = n * dim;
  if (count == 0) return cudaSuccess;
  R1_WITH_F16(f16, add_kernel<F16>
              <<<static_cast<unsigned>(blocks_for(count)), kThreads, 0, stream>>>(x, h, count));
  return cudaGetLastError();
}

cudaError_t gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t dim,
                        float* out, cudaStream_t stream) {
  if (n_rows == 0) return cudaSuccess;
  gather_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(x, rows, dim, out);
  return cudaGetLastError();
}

cudaError_t qkv_bias_rope_store(const float* qkv, const float* bias, const float* inv_freq,
                                const int32_t* positions, const int32_t* slot_mapping, int64_t n,
                                int n_heads, int n_kv_heads, int head_dim, bf16_t* q,
                                bf16_t* k_cache, bf16_t* v_cache, cudaStream_t stream, bool f16) {
  if (n == 0) return cudaSuccess;
  R1_WITH_F16(f16, qkv_rope_store_kernel<F16><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
                       qkv, bias, inv_freq, positions, slot_mapping, n_heads, n_kv_heads, head_dim,
                       q, k_cache, v_cache));
  return cudaGetLastError();
}

cudaError_t paged_attention(const AttentionArgs& a, cudaStream_t stream) {
  if (a.n_tokens == 0) return cudaSuccess;
  if (a.head_dim % 32 != 0 || a.head_dim > 32 * kMaxDimsPerLane || a.n_kv_heads <= 0 ||
      a.n_heads % a.n_kv_heads != 0 || a.max_position < 0) {
    return cudaErrorInvalidValue;
  }
  // Splits: one per kMinSplitKeys keys of the longest context (or exactly
  // fixed_splits), at most max_splits, and no more than the workspace
  // holds for these tokens.
  const int64_t per_split = a.n_tokens * a.n_heads * (2 + a.head_dim);
  int64_t n_splits =
      a.fixed_splits > 0 ? a.fixed_splits : (a.max_position + kMinSplitKeys) / kMinSplitKeys;
  n_splits = std::min<int64_t>(n_splits, a.max_splits);
  n_splits =
      std::min<int64_t>(n_splits, a.workspace != nullptr ? a.workspace_floats / per_split : 1);
  n_splits = std::max<int64_t>(n_splits, 1);
  const int splits = static_cast<int>(n_splits);
  const dim3 grid(static_cast<unsigned>(a.n_tokens), static_cast<unsigned>(a.n_heads),
                  static_cast<unsigned>(n_splits));
  const dim3 merge_grid(static_cast<unsigned>(a.n_tokens), static_cast<unsigned>(a.n_heads));
  R1_WITH_F16(
      a.f16, attention_kernel<F16><<<grid, kAttnWarps * 32, 0, stream>>>(a, splits);
      if (splits > 1) { attention_merge_kernel<F16><<<merge_grid, 32, 0, stream>>>(a, splits); });
  return cudaGetLastError();
}

cudaError_t silu_mul(const bf16_t* gate_up, int64_t n, int64_t inter, bf16_t* out,
                     cudaStream_t stream, bool f16) {
  const int64_t count = n * inter;
  if (count == 0) return cudaSuccess;
  R1_WITH_F16(
      f16, silu_mul_kernel<F16>
      <<<static_cast<unsigned>(blocks_for(count)), kThreads, 0, stream>>>(gate_up, n, inter, out));
  return cudaGetLastError();
}

cudaError_t quant_gemv(QuantKind kind, const void* w, const float* scales, int64_t rows,
                       int64_t cols, const bf16_t* x, int64_t n, void* y, bool f32_out,
                       cudaStream_t stream, bool f16) {
  const auto* bytes = static_cast<const uint8_t*>(w);
  cudaError_t e = cudaSuccess;
  R1_WITH_F16(
      f16,
      if (kind == QuantKind::kInt8) {
        e = f32_out ? launch_gemv<QuantKind::kInt8, float, F16>(bytes, scales, rows, cols, x, n,
                                                                static_cast<float*>(y), stream)
                    : launch_gemv<QuantKind::kInt8, bf16_t, F16>(bytes, scales, rows, cols, x, n,
                                                                 static_cast<bf16_t*>(y), stream);
      } else {
        e = f32_out ? launch_gemv<QuantKind::kFp8E4M3, float, F16>(bytes, scales, rows, cols, x, n,
                                                                   static_cast<float*>(y), stream)
                    : launch_gemv<QuantKind::kFp8E4M3, bf16_t, F16>(
                          bytes, scales, rows, cols, x, n, static_cast<bf16_t*>(y), stream);
      });
  return e;
}

cudaError_t quantize_fp8_tensor(const bf16_t* x, int64_t count, uint8_t* q, float* scale,
                                float* amax, cudaStream_t stream, bool f16) {
  if (count == 0) return cudaSuccess;
  cudaError_t e = cudaMemsetAsync(amax, 0, sizeof(float), stream);
  if (e != cudaSuccess) return e;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(blocks_for(count), 1024));
  const unsigned all = static_cast<unsigned>(blocks_for(count));
  R1_WITH_F16(f16, amax_kernel<F16><<<blocks, kThreads, 0, stream>>>(x, count, amax);
              quantize_fp8_kernel<F16><<<all, kThreads, 0, stream>>>(x, count, q, scale, amax));
  return cudaGetLastError();
}

cudaError_t quantize_int8_rows(const bf16_t* x, int64_t n, int64_t cols, int8_t* q, float* scales,
                               cudaStream_t stream, bool f16) {
  if (n == 0) return cudaSuccess;
  R1_WITH_F16(f16, quantize_int8_rows_kernel<F16>
              <<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, cols, q, scales));
  return cudaGetLastError();
}

cudaError_t scale_int32_product(const int32_t* acc, int64_t n, int64_t m, const float* x_scales,
                                const float* w_scales, void* y, bool f32_out, cudaStream_t stream,
                                bool f16) {
  const int64_t count = n * m;
  if (count == 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(blocks_for(count));
  R1_WITH_F16(
      f16,
      if (f32_out) {
        scale_int32_kernel<float, F16>
            <<<grid, kThreads, 0, stream>>>(acc, n, m, x_scales, w_scales, static_cast<float*>(y));
      } else {
        scale_int32_kernel<bf16_t, F16>
            <<<grid, kThreads, 0, stream>>>(acc, n, m, x_scales, w_scales, static_cast<bf16_t*>(y));
      });
  return cudaGetLastError();
}

cudaError_t dequantize(QuantKind kind, const void* w, const float* scales, int64_t rows,
                       int64_t cols, bf16_t* out, cudaStream_t stream, bool f16) {
  const int64_t count = rows * cols;
  if (count == 0) return cudaSuccess;
  const auto* bytes = static_cast<const uint8_t*>(w);
  const unsigned grid = static_cast<unsigned>(blocks_for(count));
  R1_WITH_F16(
      f16,
      if (kind == QuantKind::kInt8) {
        dequantize_kernel<QuantKind::kInt8, F16>
            <<<grid, kThreads, 0, stream>>>(bytes, scales, rows, cols, out);
      } else {
        dequantize_kernel<QuantKind::kFp8E4M3, F16>
            <<<grid, kThreads, 0, stream>>>(bytes, scales, rows, cols, out);
      });
  return cudaGetLastError();
}

}  // namespace r1::kernels::cuda
