// Llama-3 (DeepSeek-R1-Distill-Llama-*): no biases unless attention_bias;
// RoPE theta 500000 with llama3 frequency scaling (transformers
// _compute_llama3_parameters; model-facts.md §3.4).
#include <cmath>
#include <numbers>

#include "model/arch.h"

namespace r1 {

namespace {
void apply_llama3_scaling(const RopeScaling& s, std::vector<float>& inv_freq) {
  const double low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (float& f : inv_freq) {
    const double freq = f;
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double scaled = freq;
    if (wavelen > low_freq_wavelen) {
      scaled = freq / s.factor;
    } else if (wavelen >= high_freq_wavelen) {
      // Medium band: blend between the scaled and the original frequency.
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      scaled = (1.0 - smooth) * freq / s.factor + smooth * freq;
    }
    f = static_cast<float>(scaled);
  }
}
}  // namespace

ArchSpec llama_arch_spec(const ModelConfig& config) {
  ArchSpec spec;
  spec.qkv_bias = config.attention_bias;
  spec.rope_inv_freq = default_rope_inv_freq(config.rope_theta, config.head_dim);
  if (config.rope_scaling.type == RopeScaling::Type::kLlama3) {
    apply_llama3_scaling(config.rope_scaling, spec.rope_inv_freq);
  }
  return spec;
}

}  // namespace r1
