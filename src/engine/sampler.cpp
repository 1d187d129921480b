#include "engine/sampler.h"

namespace r1 {

Sampler::Sampler(const SamplingParams& params, uint64_t fallback_seed)
    : params_(params), rng_(params.seed.value_or(fallback_seed)) {}

uint64_t Sampler::next_draw() {
  return is_greedy(params_) ? 0 : rng_();
}

Result<SampledToken> Sampler::sample(std::span<const float> logits, std::span<const int32_t> prompt,
                                     std::span<const int32_t> generated) {
  return sample_row(params_, logits, prompt, generated, next_draw());
}

Result<std::vector<double>> Sampler::distribution(std::span<const float> logits,
                                                  std::span<const int32_t> prompt,
                                                  std::span<const int32_t> generated) const {
  return sampling_distribution(params_, logits, prompt, generated);
}

}  // namespace r1
