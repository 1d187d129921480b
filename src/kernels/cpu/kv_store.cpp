#include <cstring>

#include "core/dtype.h"
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

void kv_store(const KvLayerViewBf16& kv, const float* k, const float* v,
              const int32_t* slot_mapping, int64_t n_tokens) {
  const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
  for (int64_t t = 0; t < n_tokens; ++t) {
    uint16_t* kd = kv.k + slot_mapping[t] * row;
    uint16_t* vd = kv.v + slot_mapping[t] * row;
    for (int64_t i = 0; i < row; ++i) {
      kd[i] = f32_to_bf16(k[t * row + i]);
      vd[i] = f32_to_bf16(v[t * row + i]);
    }
  }
}

}  // namespace r1::kernels::cpu
