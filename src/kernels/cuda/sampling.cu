// The device sampler: the reference chain of kernels/sampling.h on one block
// per logit row. Thresholds (top-k's k-th largest logit, top-p's cut weight)
// are found exactly by bisection over the floats' ordered bit patterns, so
// the kept set is the reference's; sums are in double, in a tree order
// rather than the reference's left-to-right one.
#include <cub/block/block_scan.cuh>

#include <cfloat>
#include <cmath>

#include "kernels/cuda/cuda_ops.h"

namespace r1::kernels::cuda {
namespace {

constexpr int kBlock = 1024;

__device__ __forceinline__ bool finite(float x) {
  return isfinite(x);
}

// Total order of floats as unsigned keys (larger float, larger key).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_order_key(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

template <typename T>
__device__ T block_reduce(T v, T (*op)(T, T), T identity) {
  __shared__ __align__(8) unsigned char raw[32 * sizeof(double)];
  T* partial = reinterpret_cast<T*>(raw);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < (blockDim.x >> 5) ? partial[lane] : identity;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ double add_d(double a, double b) {
  return a + b;
}
__device__ float max_f(float a, float b) {
  return fmaxf(a, b);
}
__device__ long long add_ll(long long a, long long b) {
  return a + b;
}
__device__ int min_i(int a, int b) {
  return min(a, b);
}
__device__ int max_i(int a, int b) {
  return max(a, b);
}

// (value, id) argmax over finite values, lowest id on ties; `skip` excludes
// ids already chosen (n_skip of them). Returns the id, -1 when none.
__device__ int block_argmax(const float* l, int n, const int* skip, int n_skip) {
  float best = -INFINITY;
  int best_id = -1;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float x = l[i];
    if (!finite(x)) continue;
    bool skipped = false;
    for (int s = 0; s < n_skip; ++s) skipped |= skip[s] == i;
    if (skipped) continue;
    if (best_id < 0 || x > best) {  // ascending i per thread: ties keep the lower
      best = x;
      best_id = i;
    }
  }
  // The best value first, then the lowest id holding it.
  const float m = block_reduce<float>(best_id >= 0 ? best : -INFINITY, max_f, -INFINITY);
  const int cand = (best_id >= 0 && best == m) ? best_id : INT_MAX;
  const int id = block_reduce<int>(cand, min_i, INT_MAX);
  return id == INT_MAX ? -1 : id;
}

__global__ void __launch_bounds__(kBlock)
    sample_kernel(const float* logits, int64_t stride, int32_t n, const DeviceRow* rows,
                  const int32_t* ids, float* weights, uint32_t* flags, DeviceRowResult* out) {
  const int64_t row = blockIdx.x;
  const float* l = logits + row * stride;
  const DeviceRow r = rows[row];
  DeviceRowResult& res = out[row];
  __shared__ int chosen[kDeviceMaxTop];
  __shared__ int s_int;

  // The raw log-sum-exp, when any logprob is asked for.
  double lse = 0.0;
  if (r.logprob || r.n_top > 0 || r.score_target >= 0) {
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      if (finite(l[i])) m = fmaxf(m, l[i]);
    }
    m = block_reduce<float>(m, max_f, -INFINITY);
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      if (finite(l[i])) s += static_cast<double>(expf(l[i] - m));
    }
    s = block_reduce<double>(s, add_d, 0.0);
    lse = static_cast<double>(m) + log(s);
  }

  int id = -1;
  if (r.sample) {
    const float* src = l;
    float* w = weights + row * stride;
    uint32_t* flag = flags + row * stride;
    const int32_t* prompt = ids + r.ids_offset;
    const int32_t* gen = prompt + r.n_prompt;
    const bool repetition = r.repetition_penalty != 1.0f;
    const bool frequency = r.frequency_penalty != 0.0f;
    const bool presence = r.presence_penalty != 0.0f;
    if (repetition || frequency || presence || r.n_masked > 0) {
      for (int i = threadIdx.x; i < n; i += blockDim.x) w[i] = l[i];
      __syncthreads();
      // min_tokens: the stop ids cannot be sampled yet.
      const int32_t* masked = ids + r.masked_offset;
      for (int i = threadIdx.x; i < r.n_masked; i += blockDim.x) w[masked[i]] = -INFINITY;
      __syncthreads();
      const int n_ids = r.n_prompt + r.n_generated;
      if (repetition) {
        for (int i = threadIdx.x; i < n_ids; i += blockDim.x) {
          const int t = prompt[i];
          if (atomicOr(&flag[t], 1u) == 0u) {
            const float x = w[t];
            w[t] = x > 0.0f ? x / r.repetition_penalty : x * r.repetition_penalty;
          }
        }
        __syncthreads();
        for (int i = threadIdx.x; i < n_ids; i += blockDim.x) flag[prompt[i]] = 0u;
        __syncthreads();
      }
      if (frequency || presence) {
        for (int i = threadIdx.x; i < r.n_generated; i += blockDim.x) atomicAdd(&flag[gen[i]], 1u);
        __syncthreads();
        for (int i = threadIdx.x; i < r.n_generated; i += blockDim.x) {
          const uint32_t c = atomicExch(&flag[gen[i]], 0u);
          if (c == 0u) continue;
          float x = w[gen[i]];
          // Two roundings, as the reference's float arithmetic (no FMA).
          if (frequency) x = __fsub_rn(x, __fmul_rn(r.frequency_penalty, static_cast<float>(c)));
          if (presence) x = __fsub_rn(x, r.presence_penalty);
          w[gen[i]] = x;
        }
      }
      __syncthreads();
      src = w;
    }

    const int arg = block_argmax(src, n, nullptr, 0);
    if (arg < 0) {
      if (threadIdx.x == 0) res.error = 1;
      return;
    }
    if (r.greedy) {
      id = arg;
    } else {
      const float l_max = src[arg];
      long long n_finite = 0;
      for (int i = threadIdx.x; i < n; i += blockDim.x) n_finite += finite(src[i]) ? 1 : 0;
      n_finite = block_reduce<long long>(n_finite, add_ll, 0);
      // top-k: the k-th largest finite logit, ties kept.
      float l_floor = -INFINITY;
      if (r.top_k > 0 && r.top_k < n_finite) {
        uint32_t t = 0;
        for (int bit = 31; bit >= 0; --bit) {
          const uint32_t cand = t | (1u << bit);
          long long c = 0;
          for (int i = threadIdx.x; i < n; i += blockDim.x) {
            c += (finite(src[i]) && order_key(src[i]) >= cand) ? 1 : 0;
          }
          c = block_reduce<long long>(c, add_ll, 0);
          if (c >= r.top_k) t = cand;
        }
        l_floor = from_order_key(t);
      }
      // Weights (in place when src is the penalised copy).
      double sum = 0.0;
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float x = src[i];
        const float wi = (finite(x) && x >= l_floor) ? expf((x - l_max) / r.temperature) : 0.0f;
        w[i] = wi;
        sum += wi;
      }
      sum = block_reduce<double>(sum, add_d, 0.0);
      float w_floor = r.min_p;
      if (r.top_p < 1.0f) {
        const double target = static_cast<double>(r.top_p) * sum;
        // The largest weight value v with sum(w >= v) >= target (positive
        // floats order like their bits).
        uint32_t t = 0;
        for (int bit = 30; bit >= 0; --bit) {
          const uint32_t cand = t | (1u << bit);
          const float v = __uint_as_float(cand);
          double s = 0.0;
          for (int i = threadIdx.x; i < n; i += blockDim.x)
            s += w[i] >= v && w[i] > 0.0f ? w[i] : 0.0f;
          s = block_reduce<double>(s, add_d, 0.0);
          if (s >= target) t = cand;
        }
        if (t != 0) w_floor = fmaxf(w_floor, __uint_as_float(t));
      }
      if (w_floor > 0.0f) {
        sum = 0.0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
          if (w[i] < w_floor) w[i] = 0.0f;
          sum += w[i];
        }
        sum = block_reduce<double>(sum, add_d, 0.0);
      }
      // The draw: ids in ascending order, the first whose running sum
      // exceeds u * sum; the last kept id if rounding never gets there.
      const double u = static_cast<double>(r.draw >> 11) * 0x1.0p-53;
      const double target = u * sum;
      using Scan = cub::BlockScan<double, kBlock>;
      __shared__ typename Scan::TempStorage scan_storage;
      double offset = 0.0;
      int found = INT_MAX, last_kept = -1;
      for (int base = 0; base < n && found == INT_MAX; base += kBlock) {
        const int i = base + threadIdx.x;
        const double wi = i < n ? static_cast<double>(w[i]) : 0.0;
        double cum = 0.0, chunk = 0.0;
        Scan(scan_storage).InclusiveSum(wi, cum, chunk);
        __syncthreads();
        const int hit = (wi > 0.0 && offset + cum > target) ? i : INT_MAX;
        found = block_reduce<int>(hit, min_i, INT_MAX);
        last_kept = max(last_kept, block_reduce<int>(wi > 0.0 ? i : -1, max_i, -1));
        offset += chunk;
      }
      id = found != INT_MAX ? found : last_kept;
    }
  }

  // Reports, from the raw logits.
  if (threadIdx.x == 0) {
    res.error = 0;
    res.id = id;
    if (id >= 0 && r.logprob) res.logprob = static_cast<float>(static_cast<double>(l[id]) - lse);
    if (r.score_target >= 0) {
      const float x = l[r.score_target];
      res.target_logprob = finite(x) ? static_cast<float>(static_cast<double>(x) - lse) : -INFINITY;
    }
    s_int = 0;
  }
  __syncthreads();
  for (int j = 0; j < r.n_top; ++j) {
    const int best = block_argmax(l, n, chosen, j);
    if (best < 0) break;
    if (threadIdx.x == 0) {
      chosen[j] = best;
      res.top_ids[j] = best;
      res.top_logprobs[j] = static_cast<float>(static_cast<double>(l[best]) - lse);
      s_int = j + 1;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) res.n_top = s_int;
}

}  // namespace

cudaError_t sample_rows(const float* logits, int64_t n_rows, int64_t stride, int32_t n_valid,
                        const DeviceRow* rows, const int32_t* ids, float* weights, uint32_t* flags,
                        DeviceRowResult* out, cudaStream_t stream) {
  if (n_rows == 0) return cudaSuccess;
  sample_kernel<<<static_cast<unsigned>(n_rows), kBlock, 0, stream>>>(logits, stride, n_valid, rows,
                                                                      ids, weights, flags, out);
  return cudaGetLastError();
}

}  // namespace r1::kernels::cuda
