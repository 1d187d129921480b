// The sampling semantics of r1serve, beside the other reference ops: every
// backend's sampler (a device sampler included) must match this one. Operates
// on one row of logits at a time; kernels/reference/sampling.cpp states each
// step exactly.
//
// The chain, in this order:
//   raw logits -> [logprobs are taken here: log_softmax of the raw row]
//   -> min_tokens: the stop ids masked while the output is shorter
//   -> repetition, frequency, presence penalties
//   -> temperature < 1e-5: greedy argmax, lowest id on ties; done
//   -> temperature -> top-k -> top-p -> min-p -> one draw from what is left.
// Logits that are not finite (NaN, +-inf) count as masked: never chosen, never
// reported as an alternative.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
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
  // vLLM's min_tokens: while fewer than `min_tokens` tokens have been
  // generated, the ids in `min_tokens_ids` (the request's stop ids) cannot
  // be sampled.
  int32_t min_tokens = 0;
  std::vector<int32_t> min_tokens_ids;
};

// Whether the min_tokens mask applies to a step after `n_generated` tokens.
inline bool masks_stop_ids(const SamplingParams& p, size_t n_generated) {
  return !p.min_tokens_ids.empty() && n_generated < static_cast<size_t>(std::max(0, p.min_tokens));
}

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
// same numbers sample_row() reports as logprobs. Used for teacher-forced
// scoring; k may be as large as the row.
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int32_t k);

// Applies the min_tokens mask (-inf) and the three penalties to `logits` in
// place (the steps after the logprobs; exposed so a device sampler can be
// checked against it step by step). Every token id in `prompt`,
// `generated` and a mask that applies must be in [0, logits.size()):
// INVALID_ARGUMENT otherwise, with `logits` left unchanged.
Status apply_penalties(const SamplingParams& params, std::span<float> logits,
                       std::span<const int32_t> prompt, std::span<const int32_t> generated);

// Whether a step with these parameters is greedy (temperature < 1e-5): it
// then uses no draw. A non-greedy step uses one 64-bit draw; the caller owns
// the random generator (engine/sampler.h) and hands each row its draw, so a
// backend's sampler is a pure function of (params, logits, ids, draw).
bool is_greedy(const SamplingParams& params);

// The whole chain on one row. logits: [vocab] f32, already masked (padding at
// -inf); not modified. `draw` is ignored when the step is greedy. Errors:
// INTERNAL when the row has no finite logit; INVALID_ARGUMENT for a prompt or
// generated token id outside the vocabulary (read only when a penalty is
// active). Precondition: validate(params).ok().
Result<SampledToken> sample_row(const SamplingParams& params, std::span<const float> logits,
                                std::span<const int32_t> prompt, std::span<const int32_t> generated,
                                uint64_t draw);

// The distribution sample_row() draws from: [vocab] probabilities summing to
// 1, exactly 0 for every token the chain drops (one-hot for greedy). For
// tests and for checking a device sampler.
Result<std::vector<double>> sampling_distribution(const SamplingParams& params,
                                                  std::span<const float> logits,
                                                  std::span<const int32_t> prompt,
                                                  std::span<const int32_t> generated);

// The raw logprob of `id` (log_softmax of the row, non-finite entries
// masked): what teacher-forced scoring reports for the actual next token.
// -inf when logits[id] is not finite.
float raw_logprob(std::span<const float> logits, int32_t id);

}  // namespace r1
