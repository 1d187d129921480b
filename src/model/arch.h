// What differs between the supported architectures, one file each under
// arch/: which projections carry biases and how RoPE frequencies are built.
// The decoder block itself is shared (model-facts.md §3.1).
#pragma once

#include <vector>

#include "format/model_config.h"

namespace r1 {

struct ArchSpec {
  bool qkv_bias = false;
  std::vector<float> rope_inv_freq;  // [head_dim / 2]
};

// inv_freq[i] = 1 / theta^(2i / head_dim), rounded to f32 as HF does.
std::vector<float> default_rope_inv_freq(double theta, int64_t head_dim);

ArchSpec qwen2_arch_spec(const ModelConfig& config);  // arch/qwen2.cpp
ArchSpec llama_arch_spec(const ModelConfig& config);  // arch/llama.cpp
ArchSpec arch_spec(const ModelConfig& config);
}  // namespace r1
