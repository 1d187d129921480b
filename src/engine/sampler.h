// The sampling semantics of r1serve: every backend's sampler (a device sampler
// included) must match this one. Operates on one row of logits at a time.
//
// The chain, in this order (sampler.cpp states each step exactly):
//   raw logits -> [logprobs are taken here: log_softmax of the raw row]
//   -> repetition, frequency, presence penalties
//   -> temperature < 1e-5: greedy argmax, lowest id on ties; done
//   -> temperature -> top-k -> top-p -> min-p -> one draw from what is left.
// Logits that are not finite (NaN, +-inf) count as masked: never chosen, never
// reported as an alternative.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "core/status.h"

namespace r1 {

struct SamplingParams {
  float temperature = 1.0f;         // 0 (or < 1e-5) = greedy; at most 100
  int32_t top_k = 0;                // 0 or -1 = off
  float top_p = 1.0f;               // in (0, 1]; 1 = off
  float min_p = 0.0f;               // in [0, 1]; 0 = off; relative to the most likely token
  float repetition_penalty = 1.0f;  // [0.01, 100]; HF/vLLM style, prompt and output tokens
  float presence_penalty = 0.0f;    // [-2, 2]; OpenAI style, over output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; OpenAI style, over output tokens
  std::optional<uint64_t> seed;     // same seed -> same tokens
  bool logprobs = false;            // report the chosen token's logprob
  int32_t n_top_logprobs = 0;       // alternatives to report (0..20); needs `logprobs`
};

// INVALID_ARGUMENT naming the field and the value for values out of range.
Status validate(const SamplingParams& params);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

// Logprobs are from the model's raw distribution (log_softmax of the logits
// before penalties, temperature and truncation: vLLM's default
// "raw_logprobs"), and only filled when params.logprobs is set.
struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;           // of the chosen token; 0 when not asked for
  std::vector<TokenLogprob> top;  // min(n_top_logprobs, n finite logits) entries,
                                  // most likely first, lower id first on ties
};

// The k most likely entries of the raw distribution (log_softmax of `logits`,
// non-finite entries masked), most likely first, lower id first on ties; the
// same numbers sample() reports as logprobs. Used for teacher-forced scoring.
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t k);

// Applies the three penalties to `logits` in place (the second step of the
// chain; exposed so a device sampler can be checked against it step by step).
// Every token id in `prompt` and `generated` must be in [0, logits.size()):
// INVALID_ARGUMENT otherwise, with `logits` left unchanged.
Status apply_penalties(const SamplingParams& params, std::span<float> logits,
                       std::span<const int32_t> prompt, std::span<const int32_t> generated);

// Per-request sampler: holds the request's parameters and random generator
// (a few KB); the [vocab]-sized scratch belongs to the calling thread, so
// samplers may be used from any thread, one call at a time each.
// Precondition: validate(params).ok().
class Sampler {
 public:
  // `fallback_seed` is used when params.seed is empty (the engine draws it).
  Sampler(const SamplingParams& params, uint64_t fallback_seed);

  // logits: [vocab] f32, already masked (padding at -inf). Penalties use the
  // prompt and the tokens generated so far. Does not modify logits. Draws
  // exactly one 64-bit number from the generator unless the step is greedy.
  // Errors (the request fails, the engine goes on): INTERNAL when the row has
  // no finite logit; INVALID_ARGUMENT for a prompt or generated token id
  // outside the vocabulary (read only when a penalty is active).
  Result<SampledToken> sample(std::span<const float> logits, std::span<const int32_t> prompt,
                              std::span<const int32_t> generated);

  // The distribution sample() draws from: [vocab] probabilities summing to 1,
  // exactly 0 for every token the chain drops (one-hot for greedy). For tests
  // and for checking a device sampler. Draws nothing.
  Result<std::vector<double>> distribution(std::span<const float> logits,
                                           std::span<const int32_t> prompt,
                                           std::span<const int32_t> generated);

  const SamplingParams& params() const { return params_; }

 private:
  // Runs the chain up to the draw. On success either *greedy_id is set
  // (greedy step) or the thread's scratch holds the unnormalised weights
  // (0 = dropped) and *total their sum.
  Status prepare(std::span<const float> logits, std::span<const int32_t> prompt,
                 std::span<const int32_t> generated, int32_t* greedy_id, double* total);

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace r1
