// The CPU cache's layouts (paged_attention.cpp): V as the reference's,
// [n_blocks, block_size, n_kv_heads, head_dim]; K transposed within a
// block, [n_blocks, n_kv_heads, head_dim, block_size]. A bf16 cache stores
// each value rounded to nearest, ties to even.
#include "core/dtype.h"
#include "kernels/cpu_ops.h"

namespace r1::kernels::cpu {

namespace {

inline void put(float* p, float x) {
  *p = x;
}
inline void put(uint16_t* p, float x) {
  *p = f32_to_bf16(x);
}

template <typename T>
void store(const KvLayerViewOf<T>& kv, const float* k, const float* v, const int32_t* slot_mapping,
           int64_t n_tokens) {
  const int64_t d = kv.head_dim, n_kv = kv.n_kv_heads, bs = kv.block_size;
  const int64_t row = n_kv * d;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    const int64_t block = slot / bs, off = slot % bs;
    for (int64_t h = 0; h < n_kv; ++h) {
      T* kt = kv.k + (block * n_kv + h) * d * bs + off;
      for (int64_t j = 0; j < d; ++j) put(kt + j * bs, k[t * row + h * d + j]);
    }
    T* vd = kv.v + slot * row;
    for (int64_t i = 0; i < row; ++i) put(vd + i, v[t * row + i]);
  }
}

}  // namespace

void kv_store(const KvLayerView& kv, const float* k, const float* v, const int32_t* slot_mapping,
              int64_t n_tokens) {
  store(kv, k, v, slot_mapping, n_tokens);
}

void kv_store(const KvLayerViewBf16& kv, const float* k, const float* v,
              const int32_t* slot_mapping, int64_t n_tokens) {
  store(kv, k, v, slot_mapping, n_tokens);
}

}  // namespace r1::kernels::cpu
