// Qwen2 (DeepSeek-R1-Distill-Qwen-*): q/k/v projections carry biases; plain
// RoPE (theta 10000 for 1.5B/7B, 1e6 for 14B/32B; no scaling in any distill).
#include "model/arch.h"

namespace r1 {

ArchSpec qwen2_arch_spec(const ModelConfig& config) {
  ArchSpec spec;
  spec.qkv_bias = true;
  spec.rope_inv_freq = default_rope_inv_freq(config.rope_theta, config.head_dim);
  return spec;
}

}  // namespace r1
