#include <cmath>

#include "model/arch.h"

namespace r1 {

std::vector<float> default_rope_inv_freq(double theta, int64_t head_dim) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    inv[i] = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / head_dim));
  }
  return inv;
}

ArchSpec arch_spec(const ModelConfig& config) {
  switch (config.arch) {
    case Arch::kQwen2:
      return qwen2_arch_spec(config);
    case Arch::kLlama:
      return llama_arch_spec(config);
  }
  return {};
}

}  // namespace r1
