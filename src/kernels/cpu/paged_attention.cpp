#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {
// Index of the sequence that owns token t (query_start is ascending).
int32_t seq_of_token(const AttentionBatch& batch, int32_t t) {
  const int32_t* end = batch.query_start + batch.n_seqs + 1;
  return static_cast<int32_t>(std::upper_bound(batch.query_start, end, t) - batch.query_start) - 1;
}
}  // namespace

// Work items are (token, kv head) pairs. For each visible position the K and
// V rows are loaded once and used by all `group` query heads; each head keeps
// a running max, a running denominator and a rescaled accumulator (online
// softmax), so one pass over the context suffices.
void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out, ThreadPool& pool) {
  const int64_t d = kv.head_dim;
  const int64_t n_kv = kv.n_kv_heads;
  const int64_t group = n_heads / n_kv;
  const int64_t kv_row = n_kv * d;
  const int32_t n_tokens = batch.query_start[batch.n_seqs];
  pool.parallel_for(
      static_cast<size_t>(n_tokens) * static_cast<size_t>(n_kv),
      [&](size_t begin, size_t end, int) {
        thread_local std::vector<float> acc, run_max, run_sum;
        acc.resize(static_cast<size_t>(group * d));
        run_max.resize(static_cast<size_t>(group));
        run_sum.resize(static_cast<size_t>(group));
        for (size_t item = begin; item < end; ++item) {
          const int32_t t = static_cast<int32_t>(item / static_cast<size_t>(n_kv));
          const int64_t kvh = static_cast<int64_t>(item % static_cast<size_t>(n_kv));
          const int32_t s = seq_of_token(batch, t);
          const int32_t* table =
              batch.block_tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
          const int64_t n_ctx = static_cast<int64_t>(batch.positions[t]) + 1;
          const float* q0 = q + (static_cast<int64_t>(t) * n_heads + kvh * group) * d;
          std::fill(acc.begin(), acc.end(), 0.0f);
          std::fill(run_max.begin(), run_max.end(), -INFINITY);
          std::fill(run_sum.begin(), run_sum.end(), 0.0f);
          for (int64_t p = 0; p < n_ctx; ++p) {
            const int64_t slot =
                static_cast<int64_t>(table[p / kv.block_size]) * kv.block_size + p % kv.block_size;
            const float* k = kv.k + slot * kv_row + kvh * d;
            const float* v = kv.v + slot * kv_row + kvh * d;
            for (int64_t g = 0; g < group; ++g) {
              const float sc = dot_f32(q0 + g * d, k, d) * scale;
              float* a = acc.data() + g * d;
              if (sc > run_max[g]) {
                const float correction = std::exp(run_max[g] - sc);
                run_sum[g] *= correction;
#pragma omp simd
                for (int64_t i = 0; i < d; ++i) a[i] *= correction;
                run_max[g] = sc;
              }
              const float w = std::exp(sc - run_max[g]);
              run_sum[g] += w;
#pragma omp simd
              for (int64_t i = 0; i < d; ++i) a[i] += w * v[i];
            }
          }
          for (int64_t g = 0; g < group; ++g) {
            float* o = out + (static_cast<int64_t>(t) * n_heads + kvh * group + g) * d;
            const float inv = 1.0f / run_sum[g];
            for (int64_t i = 0; i < d; ++i) o[i] = acc[g * d + i] * inv;
          }
        }
      });
}

}  // namespace r1::kernels::cpu
