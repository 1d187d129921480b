// The sampling semantics of r1serve: every backend's sampler (a device sampler
// included) must match this one. Operates on one row of logits at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "core/status.h"

namespace r1 {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 or -1 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off; relative to the most likely token
  float repetition_penalty = 1.0f;  // HF/vLLM style, over prompt and output tokens
  float presence_penalty = 0.0f;    // OpenAI style, over output tokens
  float frequency_penalty = 0.0f;   // OpenAI style, over output tokens
  std::optional<uint64_t> seed;     // same seed -> same tokens
  int32_t n_top_logprobs = 0;       // how many alternatives to report (0..20)
};

// INVALID_ARGUMENT naming the field for values out of range.
Status validate(const SamplingParams& params);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;  // of the chosen token, see sampler.cpp for which distribution
  std::vector<TokenLogprob> top;  // n_top_logprobs entries, most likely first
};

// Per-request sampler: holds the request's random generator.
class Sampler {
 public:
  // `fallback_seed` is used when params.seed is empty (the engine draws it).
  Sampler(const SamplingParams& params, uint64_t fallback_seed);

  // logits: [vocab] f32, already masked (padding rows at -inf). Penalties use
  // the prompt and the tokens generated so far. Does not modify logits.
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> prompt,
                      std::span<const int32_t> generated);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> work_;  // [vocab] scratch, reused across calls
  std::vector<int32_t> order_;
};

}  // namespace r1
