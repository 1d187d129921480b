#include <cstring>

#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

void kv_store(const KvLayerView& kv, const float* k, const float* v, const int32_t* slot_mapping,
              int64_t n_tokens) {
  const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    std::memcpy(kv.k + slot * row, k + t * row, sizeof(float) * row);
    std::memcpy(kv.v + slot * row, v + t * row, sizeof(float) * row);
  }
}

}  // namespace r1::kernels::cpu
