#include <cmath>
#include <vector>

#include "kernels/reference_ops.h"

namespace r1::kernels::reference {

// Plain two-pass softmax over all visible positions, in double.
void paged_attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     int64_t n_heads, float scale, float* out) {
  const int64_t d = kv.head_dim;
  const int64_t group = n_heads / kv.n_kv_heads;
  const int64_t kv_row = static_cast<int64_t>(kv.n_kv_heads) * d;
  for (int32_t s = 0; s < batch.n_seqs; ++s) {
    const int32_t* table = batch.block_tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
    for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
      const int64_t n_ctx = static_cast<int64_t>(batch.positions[t]) + 1;
      for (int64_t h = 0; h < n_heads; ++h) {
        const int64_t kvh = h / group;
        const float* qv = q + (static_cast<int64_t>(t) * n_heads + h) * d;
        std::vector<double> score(n_ctx);
        double max_score = -INFINITY;
        for (int64_t p = 0; p < n_ctx; ++p) {
          int64_t slot =
              static_cast<int64_t>(table[p / kv.block_size]) * kv.block_size + p % kv.block_size;
          const float* kv_k = kv.k + slot * kv_row + kvh * d;
          double dot = 0.0;
          for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(qv[i]) * kv_k[i];
          score[p] = dot * scale;
          if (score[p] > max_score) max_score = score[p];
        }
        double denom = 0.0;
        for (int64_t p = 0; p < n_ctx; ++p) {
          score[p] = std::exp(score[p] - max_score);
          denom += score[p];
        }
        std::vector<double> acc(d, 0.0);
        for (int64_t p = 0; p < n_ctx; ++p) {
          int64_t slot =
              static_cast<int64_t>(table[p / kv.block_size]) * kv.block_size + p % kv.block_size;
          const float* kv_v = kv.v + slot * kv_row + kvh * d;
          for (int64_t i = 0; i < d; ++i) acc[i] += score[p] / denom * kv_v[i];
        }
        float* o = out + (static_cast<int64_t>(t) * n_heads + h) * d;
        for (int64_t i = 0; i < d; ++i) o[i] = static_cast<float>(acc[i]);
      }
    }
  }
}

}  // namespace r1::kernels::reference
