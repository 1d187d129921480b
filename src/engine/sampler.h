// A request's random generator for sampling. The sampling chain itself is a
// pure function of the row (kernels/sampling.h) that runs behind the
// backend; the engine keeps one Sampler per request and hands each of its
// non-greedy rows the next 64-bit draw. The generator is the only state
// sampling has.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/status.h"
#include "kernels/sampling.h"

namespace r1 {

class Sampler {
 public:
  // `fallback_seed` is used when params.seed is empty (the engine draws it).
  // Precondition: validate(params).ok().
  Sampler(const SamplingParams& params, uint64_t fallback_seed);

  // The draw for the request's next step: one number from the generator
  // unless the step is greedy (0, drawing nothing).
  uint64_t next_draw();

  // sample_row() with next_draw(): a step on the host, for tests and tools.
  Result<SampledToken> sample(std::span<const float> logits, std::span<const int32_t> prompt,
                              std::span<const int32_t> generated);
  // sampling_distribution() for these parameters; draws nothing.
  Result<std::vector<double>> distribution(std::span<const float> logits,
                                           std::span<const int32_t> prompt,
                                           std::span<const int32_t> generated) const;

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace r1
